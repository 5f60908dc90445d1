package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/content/store"
	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/node/agent"
	"github.com/meshota/meshota/node/exchange"
	"github.com/meshota/meshota/node/gossip"
	"github.com/meshota/meshota/node/host"
	"github.com/meshota/meshota/node/install"
	"github.com/meshota/meshota/node/publisher"
	"github.com/meshota/meshota/node/seed"
	"github.com/meshota/meshota/protocol"
)

// node is the network stack every test peer runs: a real libp2p host on
// loopback, gossipsub, an on-disk store and bitswap serving it.
type node struct {
	h        *host.Host
	g        *gossip.Service
	st       *store.Store
	ex       *exchange.Exchange
	plain    *content.ChunkMaps // a plaintext-only device's served releases; nil otherwise
	storeDir string
	close    func()
}

func testGossip() gossip.Options {
	return gossip.Options{RepeatWindow: time.Second, ScoreInspectPeriod: 200 * time.Millisecond}
}

// newNodeAt is newNode with the block store in storeDir.
func newNodeAt(t *testing.T, ctx context.Context, storeDir string) *node {
	return newNodeIn(t, ctx, gossip.Options{RepeatWindow: time.Second, ScoreInspectPeriod: 200 * time.Millisecond}, storeDir)
}

func newNodeIn(t *testing.T, ctx context.Context, gopts gossip.Options, storeDir string) *node {
	t.Helper()
	return newNodeHost(t, ctx, host.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}, gopts, storeDir)
}

// newNodeHost is newNodeIn with the host's configuration.
func newNodeHost(t *testing.T, ctx context.Context, hcfg host.Config, gopts gossip.Options, storeDir string) *node {
	t.Helper()
	return newNodeEx(t, ctx, hcfg, gopts, storeDir, nil)
}

// newNodeEx is newNodeHost with changes to the exchange's configuration.
func newNodeEx(t *testing.T, ctx context.Context, hcfg host.Config, gopts gossip.Options, storeDir string, excfg func(*exchange.Config)) *node {
	t.Helper()
	h, err := host.New(ctx, hcfg)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gossip.New(ctx, h, gopts)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(storeDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ecfg := exchange.Config{Host: h, Blockstore: st.Blockstore(), IsLAN: h.IsLAN, StallTimeout: 2 * time.Second}
	if excfg != nil {
		excfg(&ecfg)
	}
	ex := exchange.New(ctx, ecfg)
	n := &node{h: h, g: g, st: st, ex: ex, plain: ecfg.Plain, storeDir: storeDir}
	var once sync.Once
	n.close = func() {
		once.Do(func() {
			ex.Close()
			h.Close()
			st.Close()
		})
	}
	t.Cleanup(n.close)
	return n
}

func connect(t *testing.T, a, b *node) {
	t.Helper()
	if err := a.h.Connect(context.Background(), peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

type device struct {
	n     *node
	a     *agent.Agent
	sk    *crypto.SigningKey
	dk    *crypto.DeviceKey
	inst  *install.Dir
	hooks string // file the install hook appends to
	state string
}

// fleet is a publisher, a seed and devices.
type fleet struct {
	t       *testing.T
	ctx     context.Context
	pub     *publisher.Publisher
	seed    *seed.Seed
	seedN   *node
	devices []*device
	channel string
	devEx   func(*exchange.Config) // changes to the devices' exchanges
}

func newFleet(t *testing.T, devices int) *fleet { return newFleetEx(t, devices, nil, nil) }

// newFleetEx is newFleet with changes to the seed's and the devices'
// exchange configurations (nil: none).
func newFleetEx(t *testing.T, devices int, seedEx, devEx func(*exchange.Config)) *fleet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &fleet{t: t, ctx: ctx, channel: "stable", devEx: devEx}
	var err error
	if f.pub, err = publisher.Init(filepath.Join(t.TempDir(), "pub"), publisher.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.pub.Close() })
	f.seedN = newNodeEx(t, ctx, host.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}, testGossip(), filepath.Join(t.TempDir(), "store"), seedEx)
	if f.seed, err = seed.New(seed.Config{Dir: t.TempDir(), Store: f.seedN.st, Host: f.seedN.h, Gossip: f.seedN.g,
		InitialRoot: f.pub.Roots()[0], AnnounceInterval: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	go f.seed.Run(ctx)
	for range devices {
		d := f.newDevice(true)
		d.n.ex.SetSeeds([]peer.ID{f.seedN.h.ID()})
		f.devices = append(f.devices, d)
	}
	return f
}

// newDevice makes a device with its keys; enrolled says whether the
// publisher enrolls it.
func (f *fleet) newDevice(enrolled bool) *device {
	t := f.t
	d := &device{n: newNodeEx(t, f.ctx, host.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}, testGossip(), filepath.Join(t.TempDir(), "store"), f.devEx)}
	var err error
	if d.sk, err = crypto.GenerateSigningKey(); err != nil {
		t.Fatal(err)
	}
	if d.dk, err = crypto.GenerateDeviceKey(crypto.KEMX25519); err != nil {
		t.Fatal(err)
	}
	if enrolled {
		en, err := protocol.NewEnrollment(d.sk, d.dk, "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.pub.AddDevice(f.channel, en); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	d.hooks = filepath.Join(dir, "hooks.log")
	d.state = filepath.Join(dir, "state")
	if err := os.MkdirAll(d.state, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

// start runs the device's agent; health is its health-check command.
func (f *fleet) start(d *device, health string) { f.startCtx(f.ctx, d, health) }

// startCtx runs the agent until ctx ends.
func (f *fleet) startCtx(ctx context.Context, d *device, health string) {
	f.run(ctx, d, health, testLogger(f.t))
}

// startLogged runs the agent with its log going to log.
func (f *fleet) startLogged(d *device, health string, log *slog.Logger) { f.run(f.ctx, d, health, log) }

func (f *fleet) run(ctx context.Context, d *device, health string, log *slog.Logger) {
	t := f.t
	var err error
	d.inst, err = install.Open(filepath.Join(filepath.Dir(d.hooks), "install"), install.Options{
		Channel: f.channel,
		Install: install.Hook{Command: `echo "$MESHOTA_SEQUENCE $MESHOTA_VERSION ${MESHOTA_ROLLBACK:-0}" >> ` + d.hooks},
		Health:  install.Hook{Command: health, Timeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	d.a, err = agent.New(agent.Config{
		Channel: f.channel, StateDir: d.state, InitialRoot: f.pub.Roots()[0],
		DeviceKey: d.dk, SigningKey: d.sk, Install: d.inst,
		Host: d.n.h, Gossip: d.n.g, Store: d.n.st.Blockstore(), Network: d.n.ex,
		Traffic: func() agent.Traffic {
			t := d.n.ex.Traffic()
			return agent.Traffic{LAN: t.FromLAN, Seed: t.FromSeed, Peer: t.FromPeers}
		},
		CatchupInterval: time.Second,
		ReportInterval:  time.Second,
		Logger:          log,
		FreeSpace:       agent.StoreFreeSpace(d.n.storeDir),
		Retain:          d.n.st,
		Plain:           d.n.plain,
	})
	if err != nil {
		t.Fatal(err)
	}
	go d.a.Run(ctx)
}

// publish publishes a release of the given content and imports it into
// the seed.
func (f *fleet) ship(r *publisher.Result, err error) *publisher.Result {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
	var b bytes.Buffer
	if err := f.pub.WriteBundle(f.ctx, &b, f.channel); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.seed.Import(f.ctx, &b); err != nil {
		f.t.Fatal(err)
	}
	return r
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("MESHOTA_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func writeTree(t *testing.T, seed uint64, size int) string {
	t.Helper()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(filepath.Join(dir, "firmware.bin"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte(fmt.Sprint(seed)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitFor waits until every device reports want for seq (or fails).
func waitFor(t *testing.T, ds []*device, seq uint64, want protocol.State, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for i, d := range ds {
		for done := false; !done; {
			select {
			case e := <-d.a.Events():
				if e.Sequence == seq && e.State == want {
					done = true
				}
			case <-deadline:
				t.Fatalf("device %d (%s) did not reach %s for sequence %d in %v", i, d.a.ID(), want, seq, timeout)
			}
		}
	}
}

func sameTree(t *testing.T, src, installed string) {
	t.Helper()
	for _, name := range []string{"firmware.bin", "VERSION"} {
		a, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(installed, name))
		if err != nil {
			t.Fatalf("installed release: %v", err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("installed %s differs from the published one", name)
		}
	}
}

func TestFleetInstallsThroughTheMesh(t *testing.T) {
	f := newFleet(t, 10)
	for _, d := range f.devices {
		f.start(d, "true")
	}
	// Devices 0 and 1 reach the seed; every device reaches two earlier
	// ones, so 2..9 get everything through other devices.
	connect(t, f.devices[0].n, f.seedN)
	connect(t, f.devices[1].n, f.seedN)
	for i := 1; i < len(f.devices); i++ {
		connect(t, f.devices[i].n, f.devices[i-1].n)
		if i >= 2 {
			connect(t, f.devices[i].n, f.devices[i-2].n)
		}
	}
	src := writeTree(t, 1, 4<<20)
	r := f.ship(f.pub.Publish(f.ctx, publisher.Request{Channel: f.channel, Version: "1.0.0", Source: src}))
	waitFor(t, f.devices, r.Sequence, protocol.StateInstalled, 90*time.Second)

	var received, fromSeed uint64
	for i, d := range f.devices {
		sameTree(t, src, d.inst.CurrentPath())
		hooks, _ := os.ReadFile(d.hooks)
		if string(hooks) != "1 1.0.0 0\n" {
			t.Fatalf("device %d hook log %q, want one run", i, hooks)
		}
		tr := d.n.ex.Traffic()
		received += tr.FromLAN + tr.FromSeed + tr.FromPeers
		fromSeed += tr.FromSeed
	}
	served := f.seedN.ex.Traffic().Served
	t.Logf("blocks received by devices: %d bytes; from the seed: %d bytes (%.1f%%; the seed counted %d served), from peers: %d bytes",
		received, fromSeed, 100*float64(fromSeed)/float64(received), served, received-fromSeed)
	if served != fromSeed {
		t.Fatalf("seed served %d bytes but devices counted %d from it", served, fromSeed)
	}
	if fromSeed*2 >= received {
		t.Fatalf("the seed served %d of %d bytes: not well under half", fromSeed, received)
	}
	// The seed's status view shows every device installed.
	deadline := time.Now().Add(30 * time.Second)
	for {
		snap := f.seed.Aggregator().Snapshot()
		installed := 0
		for _, ch := range snap.Channels {
			for _, v := range ch.Versions {
				if v.Sequence == r.Sequence {
					installed = v.Devices["installed"]
				}
			}
		}
		if installed == len(f.devices) {
			if got := snap.Channels[0].BytesSeed; got != fromSeed {
				t.Fatalf("status reports %d bytes from the seed, devices counted %d", got, fromSeed)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status shows %d of %d installed: %+v", installed, len(f.devices), snap)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
