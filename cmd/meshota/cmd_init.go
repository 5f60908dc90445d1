package main

import (
	"context"
	"fmt"

	"github.com/meshota/meshota/node/publisher"
)

func init() {
	c := &command{
		Name:    "init",
		Summary: "create a publisher directory (keys, trust root)",
		Usage: `Usage: meshota init --dir P

Creates a publisher directory: a root signing key and a release signing key
(mode 0600), and trust root version 1 signed by the root key. Channel
secrets and keyrings are created on first use. Refuses to overwrite an
existing publisher directory.

Example:
  meshota init --dir ./publisher`,
	}
	c.Run = func(ctx context.Context, e *env, args []string) error {
		fs := newFlagSet(c, e)
		dir := fs.String("dir", "", "publisher directory to create (required)")
		if err := parseArgs(fs, args); err != nil {
			return err
		}
		if *dir == "" || fs.NArg() != 0 {
			return fmt.Errorf("%w: --dir is required and no arguments are taken", errUsage)
		}
		p, err := publisher.Init(*dir, publisher.Options{})
		if err != nil {
			return err
		}
		defer p.Close()
		fmt.Fprintf(e.Stdout, "publisher directory %s created\ntrust root version %d: %s/roots/0001.root (give it to seeds and devices)\n", *dir, p.Root().Version, *dir)
		return nil
	}
	register(c)
}
