package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/meshota/meshota/node/publisher"
)

// releaseFlags are the flags every command that signs a manifest shares:
// which publisher and channel, how long the manifest is valid, and where
// the release goes (a seed's admin API, or a CAR file).
type releaseFlags struct {
	dir, channel         string
	expires              time.Duration
	seed, tokenFile, out string
}

func addReleaseFlags(fs *flag.FlagSet) *releaseFlags {
	r := &releaseFlags{}
	fs.StringVar(&r.dir, "dir", "", "publisher directory (required)")
	fs.StringVar(&r.channel, "channel", "", "channel (required)")
	fs.DurationVar(&r.expires, "expires", publisher.DefaultExpiry, "how long the manifest is valid")
	fs.StringVar(&r.seed, "seed", "", "the seed's admin address (host:port)")
	fs.StringVar(&r.tokenFile, "token-file", "", "the seed's admin token file (or set MESHOTA_ADMIN_TOKEN)")
	fs.StringVar(&r.out, "out", "", "write a CAR bundle here instead of pushing to a seed")
	return r
}

// check reports missing or conflicting flags: the shared ones, and the
// command's own (ownOK false), which also names in the message.
func (r *releaseFlags) check(ownOK bool, also string) error {
	if !ownOK || r.dir == "" || r.channel == "" || (r.seed == "") == (r.out == "") {
		return fmt.Errorf("%w: --dir, --channel%s and exactly one of --seed or --out are required", errUsage, also)
	}
	return nil
}

func (r *releaseFlags) open() (*publisher.Publisher, error) {
	return publisher.Open(r.dir, publisher.Options{})
}

// ship sends the channel's latest release where the flags say.
func (r *releaseFlags) ship(ctx context.Context, e *env, p *publisher.Publisher) error {
	return ship(ctx, e, p, r.channel, r.seed, r.tokenFile, r.out)
}
