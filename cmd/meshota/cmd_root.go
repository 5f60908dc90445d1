package main

import (
	"context"
	"fmt"
	"time"

	"github.com/meshota/meshota/node/publisher"
)

func init() {
	c := &command{
		Name:    "root",
		Summary: "rotate the publisher's keys (root rotate)",
		Usage: `Usage: meshota root rotate --dir P [--expires DUR]

Replaces the root and release signing keys with new ones: trust root
version N+1 names them and is signed by the old and the new root key.
Devices and seeds that trust version N accept it when the next release
(which carries the chain) reaches them; from then on, manifests signed
with the old keys are refused. Use it on schedule, and at once if a key
may be compromised. The old keys move to P/keys/retired/.

Example:
  meshota root rotate --dir ./publisher
  meshota publish --dir ./publisher --channel stable --version 1.4.0 ./build --seed ...`,
	}
	c.Run = func(ctx context.Context, e *env, args []string) error {
		if len(args) == 0 || args[0] != "rotate" {
			return fmt.Errorf("%w: the only root subcommand is rotate", errUsage)
		}
		fs := newFlagSet(c, e)
		dir := fs.String("dir", "", "publisher directory (required)")
		expires := fs.Duration("expires", 365*24*time.Hour, "how long the new trust root is valid")
		if err := parseArgs(fs, args[1:]); err != nil {
			return err
		}
		if *dir == "" {
			return fmt.Errorf("%w: --dir is required", errUsage)
		}
		p, err := publisher.Open(*dir, publisher.Options{})
		if err != nil {
			return err
		}
		defer p.Close()
		v, err := p.RotateRoot(*expires)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "trust root version %d written to %s/roots/%04d.root; new root and release keys in %s/keys\n", v, *dir, v, *dir)
		return nil
	}
	register(c)
}
