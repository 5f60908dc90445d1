package emulate

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/content/store"
	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/node/agent"
	"github.com/meshota/meshota/node/exchange"
	"github.com/meshota/meshota/node/gossip"
	"github.com/meshota/meshota/node/install"
	"github.com/meshota/meshota/node/publisher"
	"github.com/meshota/meshota/node/seed"
	"github.com/meshota/meshota/protocol"
)

const (
	channel = "stable"
	version = "1.0.0"
	// seedAddr is on the WAN side (TEST-NET-2), not in any site.
	seedAddr = "/ip4/198.51.100.1/tcp/4001"
)

// siteAddr is device i of site s: one private /24 per site.
func siteAddr(s, i int) string { return fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4001", s>>8, s&0xff, i+1) }

// node is one peer's network stack, as cmd/meshota's runtime builds it,
// on a mocknet host.
type node struct {
	h   host.Host
	g   *gossip.Service
	st  *store.Store
	ex  *exchange.Exchange
	dir string
	// plain is the set of releases a device serves from plaintext (nil
	// on the seed): devices keep plaintext only, as `meshota agent` does.
	plain *content.ChunkMaps
}

type device struct {
	*node
	site int
	a    *agent.Agent

	mu        sync.Mutex
	installed time.Time // when the agent reported the release installed
}

// emulation is one run: it owns every node, goroutine and directory, and
// close releases them all, whatever state building reached.
type emulation struct {
	// run bounds the steps of Run: it ends with the timeout or the
	// caller's ctx. ctx is the nodes': it ends only in close, after the
	// network is cut (see there).
	run  context.Context
	ctx  context.Context
	stop context.CancelFunc
	spec Spec
	log  *slog.Logger
	dir  string
	ids  *rand.ChaCha8 // identities, from spec.Seed

	mn      mocknet.Mocknet
	links   []mocknet.Link
	pub     *publisher.Publisher
	seedN   *node
	seed    *seed.Seed
	devices []*device
	nodes   []*node        // every node made, for close
	wg      sync.WaitGroup // seed, agents, event readers
	done    chan int       // device indices, as they install
}

func newEmulation(run context.Context, spec Spec, dir string) *emulation {
	ctx, stop := context.WithCancel(context.WithoutCancel(run))
	n := 0
	for _, s := range spec.Sites {
		n += s
	}
	return &emulation{run: run, ctx: ctx, stop: stop, spec: spec, log: spec.Logger, dir: dir,
		ids: rand.NewChaCha8(seedBytes(spec.Seed, "identities")), mn: mocknet.New(), done: make(chan int, n)}
}

// seedBytes derives a ChaCha8 seed from the spec's seed and a purpose.
func seedBytes(seed uint64, purpose string) [32]byte {
	var b [32]byte
	binary.LittleEndian.PutUint64(b[:8], seed)
	copy(b[8:], purpose)
	return b
}

// close stops every goroutine, then closes the nodes, the mocknet and
// the publisher and removes the directory.
func (e *emulation) close() {
	// Cut the network before stopping the nodes. Mocknet ignores stream
	// deadlines, and a write it holds back for a slow link ends only when
	// delivered or reset: a reader waiting for one (a catch-up request, an
	// identify push started by a stopping agent) and the host's and
	// bitswap's Close, which wait for their writers, could otherwise wait
	// as long as the link's backlog. So: no more delay on any link for
	// what is still written, no link to redial, every stream reset; then
	// stop the nodes.
	for _, l := range e.links {
		l.SetOptions(mocknet.LinkOptions{})
		e.mn.Unlink(l)
	}
	for _, n := range e.nodes {
		for _, c := range n.h.Network().Conns() {
			c.Close()
		}
	}
	e.stop()
	e.wg.Wait()
	e.mn.Close()
	for _, n := range e.nodes {
		n.close()
	}
	if e.pub != nil {
		e.pub.Close()
	}
	if err := os.RemoveAll(e.dir); err != nil {
		e.log.Warn("emulation directory not removed", "dir", e.dir, "err", err)
	}
}

func (n *node) close() {
	if n.ex != nil {
		n.ex.Close()
	}
	n.h.Close()
	if n.st != nil {
		n.st.Close()
	}
}

func (e *emulation) build() error {
	var err error
	if e.pub, err = publisher.Init(filepath.Join(e.dir, "publisher"), publisher.Options{Logger: e.log.With("node", "publisher")}); err != nil {
		return fmt.Errorf("emulate: publisher: %w", err)
	}
	// Every identity first, so that each device's IsLAN can be a plain
	// read-only lookup.
	seedKey, err := e.peerKey()
	if err != nil {
		return err
	}
	seedID, err := peer.IDFromPrivateKey(seedKey)
	if err != nil {
		return err
	}
	type ident struct {
		key  p2pcrypto.PrivKey
		id   peer.ID
		site int
		addr string
	}
	var idents []ident
	siteOf := map[peer.ID]int{}
	for s, n := range e.spec.Sites {
		for i := range n {
			k, err := e.peerKey()
			if err != nil {
				return err
			}
			id, err := peer.IDFromPrivateKey(k)
			if err != nil {
				return err
			}
			idents = append(idents, ident{k, id, s, siteAddr(s, i)})
			siteOf[id] = s
		}
	}

	if e.seedN, err = e.newNode("seed", seedKey, seedAddr, exchange.Config{OncePerSite: max(e.spec.OncePerSite, 0)}); err != nil {
		return err
	}
	seedEx := e.seedN.ex
	if err := os.MkdirAll(filepath.Join(e.seedN.dir, "state"), 0o700); err != nil {
		return err
	}
	if e.seed, err = seed.New(seed.Config{
		Dir: filepath.Join(e.seedN.dir, "state"), Store: e.seedN.st, Host: e.seedN.h, Gossip: e.seedN.g,
		InitialRoot: e.pub.Roots()[0], Served: func() uint64 { return seedEx.Traffic().Served },
		Logger: e.log.With("node", "seed"),
	}); err != nil {
		return fmt.Errorf("emulate: seed: %w", err)
	}
	e.goRun(func() { e.seed.Run(e.ctx) })

	for i, id := range idents {
		site := id.site
		n, err := e.newNode(fmt.Sprintf("device-%d", i), id.key, id.addr, exchange.Config{
			Seeds: []peer.ID{seedID},
			IsLAN: func(p peer.ID) bool { s, ok := siteOf[p]; return ok && s == site },
			Plain: &content.ChunkMaps{},
		})
		if err != nil {
			return err
		}
		d := &device{node: n, site: site}
		if err := e.startAgent(i, d); err != nil {
			return err
		}
		e.devices = append(e.devices, d)
	}
	return e.connect()
}

// peerKey is the next libp2p identity from the seeded stream.
func (e *emulation) peerKey() (p2pcrypto.PrivKey, error) {
	k, _, err := p2pcrypto.GenerateEd25519Key(e.ids)
	if err != nil {
		return nil, fmt.Errorf("emulate: identity: %w", err)
	}
	return k, nil
}

// newNode makes a mocknet host at addr with gossip, a store and a block
// exchange configured by xc (Host and Blockstore are filled in).
func (e *emulation) newNode(name string, key p2pcrypto.PrivKey, addr string, xc exchange.Config) (*node, error) {
	a, err := ma.NewMultiaddr(addr)
	if err != nil {
		return nil, err
	}
	h, err := e.mn.AddPeer(key, a)
	if err != nil {
		return nil, fmt.Errorf("emulate: %s: %w", name, err)
	}
	n := &node{h: h, dir: filepath.Join(e.dir, name), plain: xc.Plain}
	e.nodes = append(e.nodes, n)
	log := e.log.With("node", name)
	// Gossip before any connection: gossipsub learns of peers from them.
	if n.g, err = gossip.New(e.ctx, h, gossip.Options{Logger: log}); err != nil {
		return nil, fmt.Errorf("emulate: %s: %w", name, err)
	}
	if n.st, err = store.Open(filepath.Join(n.dir, "store"), store.Options{Logger: log}); err != nil {
		return nil, fmt.Errorf("emulate: %s: %w", name, err)
	}
	xc.Host, xc.Blockstore, xc.Logger = h, n.st.Blockstore(), log
	n.ex = exchange.New(e.ctx, xc)
	return n, nil
}

// startAgent enrolls device i with the publisher and runs its agent.
func (e *emulation) startAgent(i int, d *device) error {
	var seed [32]byte
	e.ids.Read(seed[:])
	sk, err := crypto.SigningKeyFromSeed(seed[:])
	if err != nil {
		return err
	}
	dk, err := crypto.GenerateDeviceKey(crypto.KEMX25519)
	if err != nil {
		return err
	}
	en, err := protocol.NewEnrollment(sk, dk, fmt.Sprintf("device-%d", i), time.Now())
	if err != nil {
		return err
	}
	if _, err := e.pub.AddDevice(channel, en); err != nil {
		return fmt.Errorf("emulate: enroll device %d: %w", i, err)
	}
	log := e.log.With("node", fmt.Sprintf("device-%d", i))
	inst, err := install.Open(filepath.Join(d.dir, "install"), install.Options{Channel: channel, Logger: log})
	if err != nil {
		return err
	}
	state := filepath.Join(d.dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		return err
	}
	ex := d.ex
	d.a, err = agent.New(agent.Config{
		Channel: channel, StateDir: state, InitialRoot: e.pub.Roots()[0],
		DeviceKey: dk, SigningKey: sk, Install: inst,
		Host: d.h, Gossip: d.g, Store: d.st.Blockstore(), Network: ex,
		Traffic: func() agent.Traffic {
			t := ex.Traffic()
			return agent.Traffic{LAN: t.FromLAN, Seed: t.FromSeed, Peer: t.FromPeers}
		},
		Retain: d.st,
		Plain:  d.plain,
		Logger: log,
	})
	if err != nil {
		return fmt.Errorf("emulate: device %d: %w", i, err)
	}
	events := d.a.Events()
	e.goRun(func() {
		for {
			select {
			case ev := <-events:
				if ev.State == protocol.StateInstalled && ev.Version == version {
					d.mu.Lock()
					first := d.installed.IsZero()
					if first {
						d.installed = time.Now()
					}
					d.mu.Unlock()
					if first {
						e.done <- i
					}
				}
			case <-e.ctx.Done():
				return
			}
		}
	})
	e.goRun(func() {
		if err := d.a.Run(e.ctx); err != nil && e.ctx.Err() == nil {
			e.log.Error("agent stopped", "device", i, "err", err)
		}
	})
	return nil
}

func (e *emulation) goRun(f func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
}

// connect links and connects every device to the seed and to the other
// devices of its site, then waits until the seed knows every device
// listens for manifests: the seed announces each release once (and then
// every two minutes), to the subscribers it knows of.
func (e *emulation) connect() error {
	link := func(a, b peer.ID, l Link) error {
		ln, err := e.mn.LinkPeers(a, b)
		if err != nil {
			return fmt.Errorf("emulate: link: %w", err)
		}
		ln.SetOptions(mocknet.LinkOptions{Latency: l.Latency, Bandwidth: l.Bandwidth})
		e.links = append(e.links, ln)
		if _, err := e.mn.ConnectPeers(a, b); err != nil {
			return fmt.Errorf("emulate: connect: %w", err)
		}
		return nil
	}
	seedID := e.seedN.h.ID()
	first := 0
	for _, n := range e.spec.Sites {
		site := e.devices[first : first+n]
		for i, d := range site {
			if err := link(seedID, d.h.ID(), e.spec.SeedLink); err != nil {
				return err
			}
			for _, o := range site[:i] {
				if err := link(o.h.ID(), d.h.ID(), e.spec.LANLink); err != nil {
					return err
				}
			}
		}
		first += n
	}
	topic := protocol.ManifestTopic(channel)
	for tick := time.NewTicker(10 * time.Millisecond); ; {
		if len(e.seedN.g.Subscribers(topic)) == len(e.devices) {
			tick.Stop()
			return nil
		}
		select {
		case <-tick.C:
		case <-e.run.Done():
			tick.Stop()
			return fmt.Errorf("emulate: waiting for every device to subscribe: %w", e.run.Err())
		}
	}
}

// publish makes the release and its bundle (the publisher's work, before
// the clock starts) and returns the bundle's path.
func (e *emulation) publish(dir string) (string, error) {
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	f, err := os.Create(filepath.Join(src, "firmware.bin"))
	if err != nil {
		return "", err
	}
	_, err = io.CopyN(f, rand.NewChaCha8(seedBytes(e.spec.Seed, "release")), e.spec.ReleaseBytes)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("emulate: release: %w", err)
	}
	if _, err := e.pub.Publish(e.run, publisher.Request{Channel: channel, Version: version, Source: src}); err != nil {
		return "", fmt.Errorf("emulate: publish: %w", err)
	}
	path := filepath.Join(dir, "bundle.car")
	b, err := os.Create(path)
	if err != nil {
		return "", err
	}
	err = e.pub.WriteBundle(e.run, b, channel)
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("emulate: bundle: %w", err)
	}
	return path, nil
}

// release empties every link's token bucket, so that no link begins with
// saved-up burst, and imports the bundle into the seed, which announces
// it. It returns the time the clock starts from.
func (e *emulation) release(bundle string) (time.Time, error) {
	f, err := os.Open(bundle)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	for _, l := range e.links {
		l.SetOptions(l.Options())
	}
	t0 := time.Now()
	if _, err := e.seed.Import(e.run, f); err != nil {
		return time.Time{}, fmt.Errorf("emulate: seed import: %w", err)
	}
	return t0, nil
}

// settle waits, up to 5 s, until the bytes the seed sent have all been
// received: a block sent just before the last install (a duplicate, or one
// a cancel came too late for) may still be on its way over a slow link,
// and the seed counts it when sent, the device when received.
func (e *emulation) settle() {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var got uint64
		for _, d := range e.devices {
			got += d.ex.Traffic().FromSeed
		}
		if got >= e.seedN.ex.Traffic().Served {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait returns when every device installed or the run's context ended.
func (e *emulation) wait() {
	for range e.devices {
		select {
		case <-e.done:
		case <-e.run.Done():
			return
		}
	}
}

func (e *emulation) measure(r *Result, t0 time.Time) {
	e.settle()
	r.Installed = make([]time.Duration, len(e.devices))
	r.SiteSeedBytes = make([]int64, len(e.spec.Sites))
	for i, d := range e.devices {
		d.mu.Lock()
		at := d.installed
		d.mu.Unlock()
		r.Installed[i] = -1
		if !at.IsZero() {
			r.Installed[i] = at.Sub(t0)
		}
		t := d.ex.Traffic()
		r.PeerBytes += int64(t.FromLAN + t.FromPeers)
		r.SiteSeedBytes[d.site] += int64(t.FromSeed)
		r.DeviceSeedBytes = append(r.DeviceSeedBytes, int64(t.FromSeed))
	}
	r.SeedBytes = int64(e.seedN.ex.Traffic().Served)
}
