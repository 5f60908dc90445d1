package emulate

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Link is a mocknet link's shape.
type Link struct {
	Bandwidth float64       // bytes per second; 0 = unlimited
	Latency   time.Duration // one way
}

// Spec describes one emulated rollout.
type Spec struct {
	Sites        []int         // devices per site; len(Sites) sites
	ReleaseBytes int64         // size of the release (one file of pseudo-random bytes from Seed)
	SeedLink     Link          // the link between the seed and each device (every device links to the seed)
	LANLink      Link          // the link between two devices of the same site (devices of different sites are not linked)
	Seed         uint64        // makes the release bytes and identities reproducible
	Timeout      time.Duration // whole run; 0 = 2 minutes
	Logger       *slog.Logger  // optional

	// OncePerSite is the seed's once-per-site window (exchange.Config
	// OncePerSite): 0 means 30 s, the default of `meshota seed`; negative
	// turns the filter off.
	OncePerSite time.Duration
	// Dir is where the run's temporary directory is made ("" = the
	// system's); it is removed when Run returns.
	Dir string
}

// Result is what happened.
type Result struct {
	// Installed is, per device (site-major order), the time from publish
	// (the seed importing the release, which announces it) to the agent
	// reporting the release installed; -1 if it never did.
	Installed []time.Duration
	SeedBytes int64 // bytes of blocks the seed sent
	PeerBytes int64 // bytes of blocks devices received from other devices
	// Wall is Run's time up to the last install (or the timeout), setup
	// included; the clean-up after it is not counted.
	Wall time.Duration

	// Setup is the part of Wall before the publish: nodes, links,
	// enrollment and the publisher's work.
	Setup time.Duration
	// SiteSeedBytes is, per site, the bytes of blocks the site's devices
	// received from the seed.
	SiteSeedBytes []int64
	// DeviceSeedBytes is, per device, the bytes of blocks it received
	// from the seed.
	DeviceSeedBytes []int64
	// CPU is the processor time the whole process used from publish to
	// the last install (or the timeout). Near Wall-Setup times the cores
	// available means the emulation was CPU-bound and its install times
	// measure the machine more than the links.
	CPU time.Duration
}

// DefaultTimeout bounds a run whose Spec.Timeout is zero.
const DefaultTimeout = 2 * time.Minute

// DefaultOncePerSite is the seed's once-per-site window when
// Spec.OncePerSite is zero.
const DefaultOncePerSite = 30 * time.Second

// maxSiteDevices is what one /24 holds (.1 to .254).
const maxSiteDevices = 254

func (s *Spec) check() error {
	switch {
	case len(s.Sites) == 0:
		return fmt.Errorf("%w: no sites", ErrSpec)
	case len(s.Sites) > 1<<16:
		return fmt.Errorf("%w: %d sites, at most %d", ErrSpec, len(s.Sites), 1<<16)
	case s.ReleaseBytes <= 0:
		return fmt.Errorf("%w: release of %d bytes", ErrSpec, s.ReleaseBytes)
	case s.SeedLink.Bandwidth < 0 || s.LANLink.Bandwidth < 0 || s.SeedLink.Latency < 0 || s.LANLink.Latency < 0:
		return fmt.Errorf("%w: negative link bandwidth or latency", ErrSpec)
	}
	for i, n := range s.Sites {
		if n < 1 || n > maxSiteDevices {
			return fmt.Errorf("%w: site %d has %d devices, want 1 to %d", ErrSpec, i, n, maxSiteDevices)
		}
	}
	return nil
}

// Run builds the emulated fleet, publishes one release and waits until
// every device installed it or the run's Timeout passed; a device that did
// not install by then has -1 in Result.Installed, which is not an error.
// If ctx ends while Run waits for the installs, Run returns what it
// measured so far with ctx's error; if it ends earlier, only the error.
// Everything Run started (hosts, goroutines, directories) is gone when it
// returns.
func Run(ctx context.Context, spec Spec) (*Result, error) {
	start := time.Now()
	if err := spec.check(); err != nil {
		return nil, err
	}
	if spec.Timeout == 0 {
		spec.Timeout = DefaultTimeout
	}
	if spec.OncePerSite == 0 {
		spec.OncePerSite = DefaultOncePerSite
	}
	if spec.Logger == nil {
		spec.Logger = slog.New(slog.DiscardHandler)
	}
	runCtx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	dir, err := os.MkdirTemp(spec.Dir, "meshota-emulate-")
	if err != nil {
		return nil, fmt.Errorf("emulate: %w", err)
	}
	e := newEmulation(runCtx, spec, dir)
	defer e.close()
	if err := e.build(); err != nil {
		return nil, err
	}
	bundle, err := e.publish(filepath.Join(dir, "release"))
	if err != nil {
		return nil, err
	}
	res := &Result{Setup: time.Since(start)}
	cpu0 := cpuTime()
	t0, err := e.release(bundle)
	if err != nil {
		return nil, err
	}
	e.wait()
	res.CPU = cpuTime() - cpu0
	e.measure(res, t0)
	res.Wall = time.Since(start)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, nil
}

// cpuTime is the processor time the process used so far.
func cpuTime() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
