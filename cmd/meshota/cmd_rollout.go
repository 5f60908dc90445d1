package main

import (
	"context"
	"fmt"

	"github.com/meshota/meshota/node/publisher"
)

func init() {
	rollout := &command{
		Name:    "rollout",
		Summary: "widen a staged rollout",
		Usage: `Usage: meshota rollout --dir P --channel C --percent PCT (--seed ADMIN_ADDR | --out release.car)

Re-signs the channel's current release with a larger share of the fleet.
Devices are chosen by a stable hash of their ID, so widening only ever adds
devices; narrowing is refused (publish a rollback instead).

Example:
  meshota rollout --dir ./publisher --channel stable --percent 50 --seed 127.0.0.1:7070 --token-file ./seed/admin.token`,
	}
	rollout.Run = func(ctx context.Context, e *env, args []string) error {
		fs := newFlagSet(rollout, e)
		dir := fs.String("dir", "", "publisher directory (required)")
		channel := fs.String("channel", "", "channel (required)")
		pct := fs.Float64("percent", 0, "new share of the fleet in percent (required)")
		expires := fs.Duration("expires", publisher.DefaultExpiry, "how long the manifest is valid")
		seedAddr := fs.String("seed", "", "the seed's admin address")
		out := fs.String("out", "", "write a CAR bundle instead")
		tokenFile := fs.String("token-file", "", "the seed's admin token file (or set MESHOTA_ADMIN_TOKEN)")
		if err := parseArgs(fs, args); err != nil {
			return err
		}
		if *dir == "" || *channel == "" || (*seedAddr == "") == (*out == "") {
			return fmt.Errorf("%w: --dir, --channel, --percent and one of --seed or --out are required", errUsage)
		}
		bp, err := percentToBasisPoints(*pct)
		if err != nil {
			return err
		}
		p, err := publisher.Open(*dir, publisher.Options{})
		if err != nil {
			return err
		}
		defer p.Close()
		res, err := p.Rollout(ctx, *channel, bp, *expires)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "rollout of %s %s widened to %.2f%% (sequence %d)\n", *channel, res.Version, float64(bp)/100, res.Sequence)
		return ship(ctx, e, p, *channel, *seedAddr, *tokenFile, *out)
	}
	register(rollout)

	rollback := &command{
		Name:    "rollback",
		Summary: "return a channel to an earlier version",
		Usage: `Usage: meshota rollback --dir P --channel C --to V (--seed ADMIN_ADDR | --out release.car)

Signs a new manifest (a higher sequence: devices never accept an older one)
that points to the content of version V, marked as a deliberate rollback.
Devices still holding V's blocks fetch nothing.

Example:
  meshota rollback --dir ./publisher --channel stable --to 1.2.0 --seed 127.0.0.1:7070 --token-file ./seed/admin.token`,
	}
	rollback.Run = func(ctx context.Context, e *env, args []string) error {
		fs := newFlagSet(rollback, e)
		dir := fs.String("dir", "", "publisher directory (required)")
		channel := fs.String("channel", "", "channel (required)")
		to := fs.String("to", "", "version to return to (required)")
		expires := fs.Duration("expires", publisher.DefaultExpiry, "how long the manifest is valid")
		seedAddr := fs.String("seed", "", "the seed's admin address")
		out := fs.String("out", "", "write a CAR bundle instead")
		tokenFile := fs.String("token-file", "", "the seed's admin token file (or set MESHOTA_ADMIN_TOKEN)")
		if err := parseArgs(fs, args); err != nil {
			return err
		}
		if *dir == "" || *channel == "" || *to == "" || (*seedAddr == "") == (*out == "") {
			return fmt.Errorf("%w: --dir, --channel, --to and one of --seed or --out are required", errUsage)
		}
		p, err := publisher.Open(*dir, publisher.Options{})
		if err != nil {
			return err
		}
		defer p.Close()
		res, err := p.Rollback(ctx, *channel, *to, *expires)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "rollback of %s to %s signed (sequence %d)\n", *channel, res.Version, res.Sequence)
		return ship(ctx, e, p, *channel, *seedAddr, *tokenFile, *out)
	}
	register(rollback)
}
