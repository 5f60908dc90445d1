package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

// version is set by the linker (-X main.version=...) in release builds.
var version = "dev"

func init() {
	register(&command{
		Name:    "version",
		Summary: "print the version",
		Usage:   "Usage: meshota version\n\nPrints meshota's version and the Go version it was built with.",
		Run: func(ctx context.Context, e *env, args []string) error {
			goVersion := "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				goVersion = bi.GoVersion
			}
			fmt.Fprintf(e.Stdout, "meshota %s (%s)\n", version, goVersion)
			return nil
		},
	})
}
