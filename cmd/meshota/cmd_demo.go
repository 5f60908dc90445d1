package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshota/meshota/node/agent"
	"github.com/meshota/meshota/node/install"
	"github.com/meshota/meshota/node/publisher"
	"github.com/meshota/meshota/node/seed"
	"github.com/meshota/meshota/node/status"
)

func init() {
	c := &command{
		Name:    "demo",
		Summary: "run a publisher, a seed and a fleet on loopback",
		Usage: `Usage: meshota demo [--devices N] [--size BYTES] [--keep DIR]

Everything on loopback, in one process, with real libp2p hosts: creates a
publisher, a seed and N device agents in a temporary directory, publishes
a random release and waits until every device installed and verified it,
publishes a second release with a small change and shows how little it
costs, then rolls the fleet back. Prints a short report; exits 0 only if
every step succeeded.

Example:
  meshota demo --devices 8 --size 16777216`,
	}
	c.Run = func(ctx context.Context, e *env, args []string) error {
		fs := newFlagSet(c, e)
		n := fs.Int("devices", 8, "number of devices")
		size := fs.Int("size", 8<<20, "release size in bytes")
		keep := fs.String("keep", "", "work in this directory and keep it (default: a temporary one, removed)")
		stepTimeout := fs.Duration("step-timeout", 60*time.Second, "time limit of each step")
		logger := logFlags(fs)
		if err := parseArgs(fs, args); err != nil {
			return err
		}
		if *n < 1 || *n > 200 || *size < 1 {
			return fmt.Errorf("%w: --devices must be 1 to 200 and --size positive", errUsage)
		}
		// Logs go to stderr at warn unless asked otherwise: the report is the output.
		if !flagGiven(fs, "log-level") {
			fs.Set("log-level", "warn")
		}
		log, err := logger(e.Stderr)
		if err != nil {
			return err
		}
		dir := *keep
		if dir == "" {
			if dir, err = os.MkdirTemp("", "meshota-demo-"); err != nil {
				return err
			}
			defer os.RemoveAll(dir)
		}
		d := &demo{e: e, dir: dir, n: *n, size: *size, log: log, step: *stepTimeout}
		return d.run(ctx)
	}
	register(c)
}

type demo struct {
	e       *env
	dir     string
	n, size int
	log     *slog.Logger
	step    time.Duration

	pub    *publisher.Publisher
	seed   *seed.Seed
	seedRT *runtime
	agents []*runtime
	admin  string
	token  string
	status string
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.e.Stdout, format+"\n", args...) }

func (d *demo) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	d.say("meshota demo: 1 publisher, 1 seed, %d devices on loopback, in %s", d.n, d.dir)
	var err error
	if d.pub, err = publisher.Init(filepath.Join(d.dir, "publisher"), publisher.Options{Logger: d.log}); err != nil {
		return err
	}
	defer d.pub.Close()
	rootFile := filepath.Join(d.dir, "publisher", "roots", "0001.root")
	if err := d.startSeed(ctx, rootFile); err != nil {
		return err
	}
	defer d.seedRT.Close()
	if err := d.startDevices(ctx, rootFile); err != nil {
		return err
	}
	defer func() {
		for _, rt := range d.agents {
			rt.Close()
		}
	}()

	// Release 1.
	src := filepath.Join(d.dir, "release")
	v1 := make([]byte, d.size)
	rand.Read(v1)
	if err := writeRelease(src, v1); err != nil {
		return err
	}
	t1, r1, err := d.publish(ctx, publisher.Request{Channel: demoChannel, Version: "1.0.0", Source: src})
	if err != nil {
		return err
	}
	d.say("1. published 1.0.0: %s in %d chunks", humanBytes(r1.Size), r1.Delta.Chunks)
	snap1, err := d.waitInstalled(ctx, r1.Sequence, t1)
	if err != nil {
		return err
	}
	if err := d.checkInstalled(v1); err != nil {
		return err
	}
	b1 := bytesOf(snap1)
	d.say("   every device installed and verified it in %v: the seed sent %s (%.0f%% of %s received), peers %s",
		time.Since(t1).Round(time.Millisecond), humanBytes(b1.seed), 100*b1.seedShare(), humanBytes(b1.total()), humanBytes(b1.peers()))

	// Release 2: 1% changed in a few places, 100 bytes inserted near the start.
	v2 := smallChange(v1)
	if err := writeRelease(src, v2); err != nil {
		return err
	}
	t2, r2, err := d.publish(ctx, publisher.Request{Channel: demoChannel, Version: "1.1.0", Source: src})
	if err != nil {
		return err
	}
	d.say("2. published 1.1.0 (1%% of bytes changed, 100 inserted): %d of %d chunks new, %s of %s (%.1f%% reused)",
		r2.Delta.NewChunks, r2.Delta.Chunks, humanBytes(r2.Delta.NewBytes), humanBytes(r2.Delta.Bytes), 100*r2.Delta.ReusedFraction())
	snap2, err := d.waitInstalled(ctx, r2.Sequence, t2)
	if err != nil {
		return err
	}
	if err := d.checkInstalled(v2); err != nil {
		return err
	}
	b2 := bytesOf(snap2) // reports count the bytes of their own release
	d.say("   every device installed it in %v, receiving %s in all (%.1f%% of a full copy per device)",
		time.Since(t2).Round(time.Millisecond), humanBytes(b2.total()), 100*float64(b2.total())/float64(d.n)/float64(len(v2)))

	// Rollback.
	t3 := time.Now()
	r3, err := d.pub.Rollback(ctx, demoChannel, "1.0.0", 0)
	if err != nil {
		return err
	}
	if err := d.push(ctx); err != nil {
		return err
	}
	d.say("3. rollback to 1.0.0 signed (sequence %d)", r3.Sequence)
	if _, err := d.waitInstalled(ctx, r3.Sequence, t3); err != nil {
		return err
	}
	if err := d.checkInstalled(v1); err != nil {
		return err
	}
	d.say("   every device runs 1.0.0 again after %v", time.Since(t3).Round(time.Millisecond))
	d.say("demo passed in %v; `meshota status --seed %s` would show this fleet while it runs", time.Since(start).Round(time.Millisecond), d.status)
	return nil
}

const demoChannel = "demo"

func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

var loopbackListen = []string{"/ip4/127.0.0.1/tcp/0"}

func (d *demo) startSeed(ctx context.Context, rootFile string) error {
	root, err := os.ReadFile(rootFile)
	if err != nil {
		return err
	}
	sdir := filepath.Join(d.dir, "seed")
	if err := os.MkdirAll(sdir, 0o700); err != nil {
		return err
	}
	if d.seedRT, err = startRuntime(ctx, runtimeConfig{Dir: sdir, Listen: loopbackListen, Server: true, Logger: d.log}); err != nil {
		return err
	}
	rt := d.seedRT
	if d.seed, err = seed.New(seed.Config{Dir: sdir, Store: rt.store, Host: rt.host, Gossip: rt.gsp, InitialRoot: root,
		AnnounceInterval: 5 * time.Second, Served: func() uint64 { return rt.ex.Traffic().Served }, Logger: d.log}); err != nil {
		return err
	}
	go d.seed.Run(ctx)
	if d.token, err = seed.LoadOrCreateToken(filepath.Join(sdir, "admin.token")); err != nil {
		return err
	}
	adm, err := serve("127.0.0.1:0", d.seed.AdminHandler(d.token))
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); adm.Close() }()
	st, err := serve("127.0.0.1:0", status.Handler(d.seed.Aggregator(), prometheus.NewRegistry(), nil))
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); st.Close() }()
	d.admin, d.status = adm.Addr, st.Addr
	return nil
}

// startDevices creates, enrolls and starts the devices. Two reach the
// seed; every device also keeps two earlier devices as bootstrap peers, so
// most of the fleet depends on its peers.
func (d *demo) startDevices(ctx context.Context, rootFile string) error {
	seedAddrs := d.seedRT.host.P2PAddrs()
	var addrs [][]string
	for i := range d.n {
		ddir := filepath.Join(d.dir, fmt.Sprintf("device%02d", i))
		_, enrollment, err := deviceInit(ddir, rootFile, fmt.Sprintf("demo-%d", i), "hybrid")
		if err != nil {
			return err
		}
		if _, err := d.pub.AddDevice(demoChannel, enrollment); err != nil {
			return err
		}
		var boot []string
		if i < 2 {
			boot = append(boot, seedAddrs...)
		}
		for j := max(0, i-2); j < i; j++ {
			boot = append(boot, addrs[j]...)
		}
		a, rt, err := startAgent(ctx, agentOptions{
			Dir: ddir, Channel: demoChannel, InstallDir: filepath.Join(ddir, "install"),
			Install:   install.Hook{Command: "test -s \"$MESHOTA_RELEASE_DIR/firmware.bin\""},
			Health:    install.Hook{Command: "test -s \"$MESHOTA_CURRENT_DIR/firmware.bin\"", Timeout: 10 * time.Second},
			Bootstrap: boot, Listen: loopbackListen,
			Seeds:           []peer.ID{d.seedRT.host.ID()},
			CatchupInterval: 2 * time.Second, ReportInterval: 2 * time.Second,
		}, d.log)
		if err != nil {
			return err
		}
		d.agents = append(d.agents, rt)
		addrs = append(addrs, rt.host.P2PAddrs())
		go func(a *agent.Agent) {
			if err := a.Run(ctx); err != nil {
				d.log.Error("agent stopped", "err", err)
			}
		}(a)
	}
	return nil
}

func (d *demo) publish(ctx context.Context, r publisher.Request) (time.Time, *publisher.Result, error) {
	t := time.Now()
	res, err := d.pub.Publish(ctx, r)
	if err != nil {
		return t, nil, err
	}
	return t, res, d.push(ctx)
}

// push sends the latest release to the seed through its admin API.
func (d *demo) push(ctx context.Context) error {
	_, err := pushBundle(ctx, d.admin, d.token, func(w io.Writer) error { return d.pub.WriteBundle(ctx, w, demoChannel) })
	return err
}

// waitInstalled polls the seed's status (what `meshota status` reads)
// until every device reports seq installed.
func (d *demo) waitInstalled(ctx context.Context, seq uint64, since time.Time) (*status.Snapshot, error) {
	deadline := time.Now().Add(d.step)
	for {
		snap, _, err := fetchStatus(ctx, d.status)
		if err != nil {
			return nil, err
		}
		installed, failed := 0, []string{}
		for _, ch := range snap.Channels {
			for _, v := range ch.Versions {
				if v.Sequence == seq {
					installed = v.Devices[status.StateInstalled]
				}
			}
			for _, f := range ch.Failures {
				if f.Sequence == seq {
					failed = append(failed, f.DeviceID+": "+f.Error)
				}
			}
		}
		if len(failed) > 0 {
			return nil, fmt.Errorf("devices failed sequence %d:\n  %s", seq, strings.Join(failed, "\n  "))
		}
		if installed == d.n {
			return snap, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d devices installed sequence %d after %v", installed, d.n, seq, time.Since(since).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkInstalled compares every device's running release with want.
func (d *demo) checkInstalled(want []byte) error {
	for i := range d.n {
		got, err := os.ReadFile(filepath.Join(d.dir, fmt.Sprintf("device%02d", i), "install", "current", "firmware.bin"))
		if err != nil {
			return fmt.Errorf("device %d: %w", i, err)
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("device %d runs bytes that differ from the release", i)
		}
	}
	return nil
}

func writeRelease(dir string, firmware []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "firmware.bin"), firmware, 0o644)
}

// smallChange alters 1% of b in four places and inserts 100 bytes near
// the start: a typical small update.
func smallChange(b []byte) []byte {
	out := make([]byte, 0, len(b)+100)
	cut := min(4096, len(b))
	out = append(out, b[:cut]...)
	ins := make([]byte, 100)
	rand.Read(ins)
	out = append(out, ins...)
	out = append(out, b[cut:]...)
	span := max(1, len(b)/400) // 4 spans of 0.25%
	for k := 1; k <= 4; k++ {
		at := k * len(out) / 5
		if at+span <= len(out) {
			rand.Read(out[at : at+span])
		}
	}
	return out
}

type traffic struct{ seed, lan, peer uint64 }

func bytesOf(s *status.Snapshot) traffic {
	var t traffic
	for _, ch := range s.Channels {
		t.seed += ch.BytesSeed
		t.lan += ch.BytesLAN
		t.peer += ch.BytesPeer
	}
	return t
}

func (t traffic) total() uint64 { return t.seed + t.lan + t.peer }
func (t traffic) peers() uint64 { return t.lan + t.peer }
func (t traffic) seedShare() float64 {
	if t.total() == 0 {
		return 0
	}
	return float64(t.seed) / float64(t.total())
}
