package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/meshota/meshota/node/publisher"
	"github.com/meshota/meshota/protocol"
)

func init() {
	c := &command{
		Name:    "fleet",
		Summary: "enroll, revoke and list a channel's devices",
		Usage: `Usage:
  meshota fleet add    --dir P --channel C ENROLLMENT...
  meshota fleet revoke --dir P --channel C DEVICE_ID
  meshota fleet list   --dir P [--channel C] [--json]

add enrolls devices from the enrollment strings 'meshota device init'
printed: the next release is readable by them. revoke removes a device and
starts a new key epoch: it can read nothing published afterwards. Both take
effect with the next publish, rollout or rollback.

Examples:
  meshota fleet add --dir ./publisher --channel stable "$(cat dev1/enrollment.txt)"
  meshota fleet revoke --dir ./publisher --channel stable 7k3q...
  meshota fleet list --dir ./publisher --json`,
	}
	c.Run = func(ctx context.Context, e *env, args []string) error {
		if len(args) == 0 {
			return fmt.Errorf("%w: fleet needs add, revoke or list", errUsage)
		}
		sub, args := args[0], args[1:]
		fs := newFlagSet(c, e)
		dir := fs.String("dir", "", "publisher directory (required)")
		channel := fs.String("channel", "", "channel")
		asJSON := fs.Bool("json", false, "list as JSON")
		if err := parseArgs(fs, args); err != nil {
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
		switch sub {
		case "add":
			if *channel == "" || fs.NArg() == 0 {
				return fmt.Errorf("%w: add needs --channel and at least one enrollment string", errUsage)
			}
			for _, en := range fs.Args() {
				id, err := p.AddDevice(*channel, en)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.Stdout, "enrolled %s in %s\n", id, *channel)
			}
			return nil
		case "revoke":
			if *channel == "" || fs.NArg() != 1 {
				return fmt.Errorf("%w: revoke needs --channel and one device ID", errUsage)
			}
			id, err := protocol.ParseDeviceID(fs.Arg(0))
			if err != nil {
				return err
			}
			if err := p.Revoke(*channel, id); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "revoked %s from %s; a new key epoch starts with the next publish\n", id, *channel)
			return nil
		case "list":
			channels := []string{*channel}
			if *channel == "" {
				if channels, err = p.Channels(); err != nil {
					return err
				}
			}
			type row struct {
				Channel string             `json:"channel"`
				Devices []publisher.Device `json:"devices"`
			}
			var rows []row
			for _, ch := range channels {
				ds, err := p.Devices(ch)
				if err != nil {
					return err
				}
				rows = append(rows, row{ch, ds})
			}
			if *asJSON {
				enc := json.NewEncoder(e.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CHANNEL\tDEVICE\tNAME")
			for _, r := range rows {
				for _, d := range r.Devices {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Channel, d.ID, d.Name)
				}
			}
			return tw.Flush()
		}
		return fmt.Errorf("%w: unknown fleet subcommand %q", errUsage, sub)
	}
	register(c)
}
