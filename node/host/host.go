package host

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// Config configures a host. The zero value listens on every interface on
// random ports, with mDNS off.
type Config struct {
	// IdentityPath keeps the host's key; empty means an ephemeral identity.
	IdentityPath string
	// ListenAddrs are multiaddrs; default TCP and QUIC on 0.0.0.0, random ports.
	ListenAddrs []string
	// Bootstrap peers (multiaddrs ending in /p2p/<id>) are dialled at start
	// and redialled whenever the connection drops; they are never pruned.
	Bootstrap []string
	// MDNS turns on LAN discovery under MDNSService (default "meshota").
	MDNS        bool
	MDNSService string
	// ConnLow and ConnHigh are the connection manager's water marks
	// (defaults 32 and 64: enough for a mesh degree of 6-12 plus LAN peers).
	ConnLow, ConnHigh int
	// MemoryLimit and FDLimit size the resource manager (defaults 128 MiB
	// and 256 descriptors: a small device).
	MemoryLimit int64
	FDLimit     int
	// MaxConns, when set, replaces the resource manager's connection
	// limits (scaled from MemoryLimit: 128 inbound at 1 GiB), for a seed
	// that many devices connect to.
	MaxConns int
	Logger   *slog.Logger
}

// Host is a libp2p host with meshota's discovery.
type Host struct {
	host.Host
	log  *slog.Logger
	mdns mdns.Service

	mu  sync.Mutex
	lan map[peer.ID]bool

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	boot      []peer.AddrInfo
	cfg       Config
	startOnce sync.Once
	startErr  error
}

// Defaults for small devices.
const (
	DefaultConnLow     = 32
	DefaultConnHigh    = 64
	DefaultMemoryLimit = 128 << 20
	DefaultFDLimit     = 256
)

// New makes a host listening on its addresses; Start begins discovery.
func New(ctx context.Context, cfg Config) (*Host, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.ListenAddrs) == 0 {
		cfg.ListenAddrs = []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"}
	}
	if cfg.ConnLow == 0 {
		cfg.ConnLow, cfg.ConnHigh = DefaultConnLow, DefaultConnHigh
	}
	if cfg.MemoryLimit == 0 {
		cfg.MemoryLimit = DefaultMemoryLimit
	}
	if cfg.FDLimit == 0 {
		cfg.FDLimit = DefaultFDLimit
	}
	boot, err := ParseAddrInfos(cfg.Bootstrap)
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, err
	}
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	scaled := limits.Scale(cfg.MemoryLimit, cfg.FDLimit)
	if cfg.MaxConns > 0 {
		p := scaled.ToPartialLimitConfig()
		n := rcmgr.LimitVal(cfg.MaxConns)
		p.System.Conns, p.System.ConnsInbound, p.System.ConnsOutbound = n, n, n
		scaled = p.Build(scaled)
	}
	// libp2p's Prometheus metrics go to the default registry, which no
	// meshota endpoint serves (status has its own), and they cost a trace
	// event and label lookups on every stream: bitswap opens one per
	// message sent.
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(scaled), rcmgr.WithMetricsDisabled())
	if err != nil {
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(tls.ID, tls.New),
		libp2p.ConnectionManager(cm),
		libp2p.ResourceManager(rm),
		// Chunk transfers need direct connections: a relay carries 128 KiB.
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.SwarmOpts(swarm.WithDialRanker(quicFirst)),
	}
	if cfg.IdentityPath != "" {
		k, err := LoadOrCreateIdentity(cfg.IdentityPath)
		if err != nil {
			return nil, err
		}
		opts = append(opts, libp2p.Identity(k))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	hh := &Host{Host: h, log: cfg.Logger, lan: map[peer.ID]bool{}, cancel: cancel, ctx: ctx, boot: boot, cfg: cfg}
	return hh, nil
}

// Start dials the bootstrap peers and starts mDNS. It is separate from New
// so that services that must see every connection (gossipsub) can be
// attached to the host before the first one is made.
func (hh *Host) Start() error {
	hh.startOnce.Do(func() { hh.startErr = hh.start() })
	return hh.startErr
}

func (hh *Host) start() error {
	ctx, h, cfg := hh.ctx, hh.Host, hh.cfg
	for _, b := range hh.boot {
		h.ConnManager().Protect(b.ID, "bootstrap")
		h.Peerstore().AddAddrs(b.ID, b.Addrs, time.Hour)
		hh.wg.Add(1)
		go func() {
			defer hh.wg.Done()
			hh.keepConnected(ctx, b)
		}()
	}
	if cfg.MDNS {
		svc := cfg.MDNSService
		if svc == "" {
			svc = "meshota"
		}
		hh.mdns = mdns.NewMdnsService(h, svc, notifee{hh, ctx})
		if err := hh.mdns.Start(); err != nil {
			return fmt.Errorf("host: mdns: %w", err)
		}
	}
	return nil
}

// keepConnected dials p until connected, then waits and redials after a
// disconnection, with exponential backoff (1 s to 1 min, jittered).
func (h *Host) keepConnected(ctx context.Context, p peer.AddrInfo) {
	backoff := time.Second
	for ctx.Err() == nil {
		if h.Network().Connectedness(p.ID) != network.Connected {
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := h.Connect(dctx, p)
			cancel()
			if err != nil {
				h.log.Debug("bootstrap peer unreachable", "peer", p.ID, "err", err, "retry_in", backoff)
				sleep(ctx, backoff+time.Duration(rand.Int64N(int64(backoff/2+1))))
				backoff = min(2*backoff, time.Minute)
				continue
			}
			h.log.Info("connected to bootstrap peer", "peer", p.ID)
		}
		backoff = time.Second
		sleep(ctx, 2*time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

type notifee struct {
	h   *Host
	ctx context.Context
}

// HandlePeerFound connects to a peer mDNS found and marks it as on our LAN.
func (n notifee) HandlePeerFound(p peer.AddrInfo) {
	if p.ID == n.h.ID() {
		return
	}
	n.h.markLAN(p.ID)
	go func() {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		defer cancel()
		if err := n.h.Connect(ctx, p); err != nil {
			n.h.log.Debug("LAN peer unreachable", "peer", p.ID, "err", err)
		}
	}()
}

func (h *Host) markLAN(p peer.ID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lan[p] = true
	h.ConnManager().TagPeer(p, "lan", 50) // prefer to keep LAN peers
}

// IsLAN tells whether p was found on this host's LAN.
func (h *Host) IsLAN(p peer.ID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lan[p]
}

// LANPeers lists the peers found on the LAN.
func (h *Host) LANPeers() []peer.ID {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]peer.ID, 0, len(h.lan))
	for p := range h.lan {
		out = append(out, p)
	}
	return out
}

// Close stops discovery and the host.
func (h *Host) Close() error {
	h.cancel()
	if h.mdns != nil {
		h.mdns.Close()
	}
	h.wg.Wait()
	return h.Host.Close()
}

// ParseAddrInfos parses multiaddrs ending in /p2p/<peer ID>.
func ParseAddrInfos(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("host: bootstrap address %q: %w", s, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil {
			return nil, fmt.Errorf("host: bootstrap address %q needs a /p2p/<peer ID> suffix: %w", s, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}

// P2PAddrs returns the host's listen addresses with its /p2p/ ID, for
// others' bootstrap lists.
func (h *Host) P2PAddrs() []string {
	var out []string
	for _, a := range h.Addrs() {
		out = append(out, a.String()+"/p2p/"+h.ID().String())
	}
	return out
}
