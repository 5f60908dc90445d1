//go:build tools

// This file keeps in go.mod the modules planned work needs before any
// package imports them: gonum/plot for the simulator's plots (issue 7).
// Remove a line once a real package imports the module.
package main

import (
	_ "gonum.org/v1/plot"
)
