package exchange

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/bitswap"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/node/policy"
)

// Config configures an exchange.
type Config struct {
	Host       host.Host
	Blockstore blockstore.Blockstore
	// IsLAN classifies peers as on the node's LAN; nil means none is.
	IsLAN func(peer.ID) bool
	// Seeds are the seed nodes' peer IDs, for the byte counters.
	Seeds []peer.ID
	// MaxOutstandingBytesPerPeer bounds the data queued for one peer
	// (default 4 MiB: bitswap's 1 MiB default underfills fast links).
	MaxOutstandingBytesPerPeer int
	// StallTimeout is how long a fetch may go without receiving a block
	// before what is missing is asked again of every connected peer
	// (default 10 s).
	StallTimeout time.Duration
	// QuickStall is the shortest wait before a fetch asks again for a
	// block that a peer said it has but that did not come (default 1 s;
	// negative disables). See stallSource.
	QuickStall time.Duration
	// Cap limits the exchange's bandwidth, for constrained links.
	Cap Rate
	// OncePerSite, when positive, makes this node (a seed) send each block
	// to at most one peer per site within that window (see siteFilter);
	// SiteOf names a peer's site (default: SiteOf(Host)). Such a seed also
	// answers a want-have for a block it grants with the block itself
	// (seedAnswersHaves).
	OncePerSite time.Duration
	SiteOf      func(peer.ID) string
	// Plain makes this a device that keeps plaintext only
	// (content.AssembleOptions.PlaintextOnly): the releases it serves
	// from plaintext, which the device's agent maintains (installed trees,
	// the staging map of the release it assembles). Chunk blocks of these
	// releases are read from their plaintext, sealed again and CID-checked,
	// and a fetched one is not written to Blockstore (see plainStore).
	// nil: every block is kept in Blockstore (seeds, publishers, devices
	// outside the rollout).
	Plain *content.ChunkMaps
	// Logger gets stalled fetches (info) and, at debug level, a line for
	// every block received from the network ("block received", with its
	// CID and sender: the record of what a node fetched, for instance
	// after a restart) and sent ("block sent"). nil discards.
	Logger *slog.Logger

	// idleAfter is how long an idle stream the server sent on stays open
	// for the next message (default defaultIdleAfter; tests shorten it).
	idleAfter time.Duration
}

// Traffic is what the exchange received, by source, and what it served.
type Traffic struct {
	FromLAN, FromSeed, FromPeers uint64
	Served                       uint64
}

// Exchange is a running bitswap with its blockservice.
type Exchange struct {
	bs    *bitswap.Bitswap
	svc   blockservice.BlockService
	isLAN func(peer.ID) bool
	stall time.Duration
	quick time.Duration
	haves *haveBoard
	log   *slog.Logger
	site  *siteFilter // nil unless the node sends each block once per site
	plain *plainStore // nil unless the device keeps plaintext only
	net   *streamReuse

	mu    sync.RWMutex
	seeds map[peer.ID]bool

	fromLAN, fromSeed, fromPeers, served atomic.Uint64
	lastRead                             atomic.Int64 // unix ns of the last exchange bytes read
}

// New starts bitswap on the host, serving and storing into the blockstore.
func New(ctx context.Context, cfg Config) *Exchange {
	if cfg.IsLAN == nil {
		cfg.IsLAN = func(peer.ID) bool { return false }
	}
	if cfg.MaxOutstandingBytesPerPeer == 0 {
		cfg.MaxOutstandingBytesPerPeer = 4 << 20
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = policy.StallTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.QuickStall == 0 {
		cfg.QuickStall = time.Second
	}
	e := &Exchange{isLAN: cfg.IsLAN, seeds: map[peer.ID]bool{}, stall: cfg.StallTimeout, quick: cfg.QuickStall, haves: newHaveBoard(), log: cfg.Logger}
	e.SetSeeds(cfg.Seeds)
	opts := []bitswap.Option{
		bitswap.WithTracer(tracer{e}),
		bitswap.MaxOutstandingBytesPerPeer(cfg.MaxOutstandingBytesPerPeer),
	}
	if cfg.OncePerSite > 0 {
		if cfg.SiteOf == nil {
			cfg.SiteOf = SiteOf(cfg.Host)
		}
		bstore := cfg.Blockstore
		e.site = newSiteFilter(cfg.OncePerSite, cfg.SiteOf, func(c cid.Cid) int64 {
			n, err := bstore.GetSize(context.Background(), c)
			if err != nil {
				return 0 // not here: bitswap answers DONT_HAVE whatever the rule says
			}
			return int64(n)
		})
		e.site.log = cfg.Logger
		opts = append(opts, bitswap.WithPeerBlockRequestFilter(e.site.allow),
			bitswap.WithWantHaveReplaceSize(seedAnswersHaves))
	}
	if cfg.idleAfter == 0 {
		cfg.idleAfter = defaultIdleAfter
	}
	e.net = newStreamReuse(newLimitedHost(cfg.Host, cfg.Cap, &e.lastRead), cfg.idleAfter)
	var bsn bsnetwork.BitSwapNetwork = e.net
	if e.site != nil {
		bsn = siteNet{bsn, e.site}
	}
	bstore := cfg.Blockstore
	if cfg.Plain != nil {
		e.plain = newPlainStore(bstore, cfg.Plain)
		bstore = e.plain
	}
	e.bs = bitswap.New(ctx, bsn, nil, bstore, opts...)
	e.svc = blockservice.New(bstore, verifiedFetches{e.bs})
	return e
}

// seedAnswersHaves is the largest block a seed with the site filter sends
// in answer to a want-have (boxo's WithWantHaveReplaceSize; its default is
// 1 KiB): every block content writes. A fetch's bitswap session starts by asking
// every peer want-have; the want-block that followed the seed's HAVE
// waited for boxo's 20 ms send tick and a round trip: ≈25 ms to the first
// block on loopback, 5 ms now (figure 3b, docs/PERFORMANCE.md), a WAN
// round trip saved per fresh block on a fleet. Only behind the filter: it
// refuses (DONT_HAVE) a block already granted to the asker's site, which
// its neighbours then send, so no device gets a block from both the seed
// and its LAN; devices keep answering HAVE, or each neighbour holding a
// block would send it.
const seedAnswersHaves = content.MaxBlockSize

// SetSeeds replaces the set of seed peer IDs.
func (e *Exchange) SetSeeds(ids []peer.ID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seeds = map[peer.ID]bool{}
	for _, id := range ids {
		e.seeds[id] = true
	}
}

// GetBlocks fetches blocks by CID from connected peers: the blockservice
// answers from the local store first, and verifies and stores every block
// that comes from the network (on a plaintext-only device, not the chunk
// blocks of mapped releases: see plainStore); a fetch that stalls is asked again (see
// stallSource). It has content.BlockSource's signature. Blocks from the
// network are marked content.Verified (verifiedFetches), those from the
// local store are not.
func (e *Exchange) GetBlocks(ctx context.Context, cids []cid.Cid) <-chan blocks.Block {
	return stallSource{src: sessionSource{e.svc}, stall: e.stall, quick: e.quick, haves: e.haves, settle: e.settle, active: e.active, log: e.log}.GetBlocks(ctx, cids)
}

// active says when the exchange last read bytes from any peer.
func (e *Exchange) active() time.Time { return time.Unix(0, e.lastRead.Load()) }

// settle waits, at most a second, until none of cids is on bitswap's
// wantlist any more (stallSource.settle says why). Another fetch of the
// same block keeps it listed; then the second runs out and the re-ask goes
// ahead anyway.
func (e *Exchange) settle(ctx context.Context, cids []cid.Cid) {
	deadline := time.Now().Add(time.Second)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		listed := false
		for _, c := range e.bs.GetWantlist() {
			if slices.Contains(cids, c) {
				listed = true
				break
			}
		}
		if !listed {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sessionSource makes each request new bitswap sessions, which ask every
// connected peer afresh: one session per block.
//
// One session per block because a boxo session (v0.43) counts a peer that
// said HAVE for one of its blocks as "unknown" for the others, ranks
// unknown above DONT_HAVE, and so sends that peer want-blocks for blocks
// it lacks; the peer answers DONT_HAVE but keeps each want-block and sends
// the block once it gets it, and so does every next peer the session
// tries: the same block arrives from several neighbours. In a session of
// one block the only peers are those that said HAVE for it (the first
// broadcast is want-haves, which a peer lacking the block keeps and
// answers with HAVE once it has it), so its want-block goes to one of them
// (TestNeighboursThatLackABlockAreNotSentItsWantBlock; in the fleet
// benchmark up to 38 copies of a block reached a site of 8 devices).
//
// Only requests of at most maxSplit blocks are split: content.Assemble
// asks for windows of 8 chunks (then mostly one at a time), the block
// list for at most 16 shards. A bigger request is a bulk fetch, which is
// one session: 256 sessions at once cost ≈12% more CPU per byte on
// loopback in figure 3b's single request of 256 blocks, and its first
// block came 61 ms after the start instead of 27.
type sessionSource struct{ svc blockservice.BlockService }

const maxSplit = 16

func (s sessionSource) GetBlocks(ctx context.Context, cids []cid.Cid) <-chan blocks.Block {
	if len(cids) == 1 || len(cids) > maxSplit {
		return blockservice.NewSession(ctx, s.svc).GetBlocks(ctx, cids)
	}
	out := make(chan blocks.Block)
	var wg sync.WaitGroup
	for _, c := range cids {
		in := blockservice.NewSession(ctx, s.svc).GetBlocks(ctx, []cid.Cid{c})
		wg.Go(func() {
			for b := range in {
				select {
				case out <- b:
				case <-ctx.Done():
					for range in { // let the session wind down
					}
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out
}

// Traffic returns the counters so far.
func (e *Exchange) Traffic() Traffic {
	return Traffic{FromLAN: e.fromLAN.Load(), FromSeed: e.fromSeed.Load(), FromPeers: e.fromPeers.Load(), Served: e.served.Load()}
}

// Close stops bitswap.
func (e *Exchange) Close() error { return e.bs.Close() }

// tracer counts block bytes per message. It sees every message bitswap
// sends or receives, before verification: a peer that sends bytes that
// fail their hash still counts, which is right for bandwidth accounting.
type tracer struct{ e *Exchange }

func (t tracer) MessageReceived(p peer.ID, m bsmsg.BitSwapMessage) {
	var n uint64
	logged := t.e.log.Enabled(context.Background(), slog.LevelDebug)
	if haves := m.Haves(); len(haves) > 0 {
		now := time.Now()
		for _, c := range haves {
			t.e.haves.have(c, now)
		}
	}
	for _, b := range m.Blocks() {
		n += uint64(len(b.RawData()))
		if logged {
			t.e.log.Debug("block received", "cid", b.Cid(), "bytes", len(b.RawData()), "from", p)
		}
	}
	if n == 0 {
		return
	}
	t.e.mu.RLock()
	seed := t.e.seeds[p]
	t.e.mu.RUnlock()
	switch {
	case seed:
		t.e.fromSeed.Add(n)
	case t.e.isLAN(p):
		t.e.fromLAN.Add(n)
	default:
		t.e.fromPeers.Add(n)
	}
}

func (t tracer) MessageSent(p peer.ID, m bsmsg.BitSwapMessage) {
	var n uint64
	logged := t.e.log.Enabled(context.Background(), slog.LevelDebug)
	for _, b := range m.Blocks() {
		n += uint64(len(b.RawData()))
		if logged {
			t.e.log.Debug("block sent", "cid", b.Cid(), "bytes", len(b.RawData()), "to", p)
		}
	}
	t.e.served.Add(n)
}
