package main

import (
	"context"
	"fmt"
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
		rf := addReleaseFlags(fs)
		pct := fs.Float64("percent", 0, "new share of the fleet in percent (required)")
		if err := parseArgs(fs, args); err != nil {
			return err
		}
		if err := rf.check(true, ", --percent"); err != nil {
			return err
		}
		bp, err := percentToBasisPoints(*pct)
		if err != nil {
			return err
		}
		p, err := rf.open()
		if err != nil {
			return err
		}
		defer p.Close()
		res, err := p.Rollout(ctx, rf.channel, bp, rf.expires)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "rollout of %s %s widened to %.2f%% (sequence %d)\n", rf.channel, res.Version, float64(bp)/100, res.Sequence)
		return rf.ship(ctx, e, p)
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
		rf := addReleaseFlags(fs)
		to := fs.String("to", "", "version to return to (required)")
		if err := parseArgs(fs, args); err != nil {
			return err
		}
		if err := rf.check(*to != "", ", --to"); err != nil {
			return err
		}
		p, err := rf.open()
		if err != nil {
			return err
		}
		defer p.Close()
		res, err := p.Rollback(ctx, rf.channel, *to, rf.expires)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "rollback of %s to %s signed (sequence %d)\n", rf.channel, res.Version, res.Sequence)
		return rf.ship(ctx, e, p)
	}
	register(rollback)
}
