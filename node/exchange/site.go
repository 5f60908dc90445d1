package exchange

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/node/policy"
)

// siteFilter applies policy.SiteGrants (send each block about once per
// site, spread over the site's devices) to bitswap's block requests; sites
// come from siteOf.
//
// It also refuses a peer a block that was already handed to the network
// for that same peer within the window (while the peer stays connected and
// the send did not fail). bitswap's server takes a block off the peer's
// wantlist when it starts writing it and forgets the task once the write
// returns, which is when the bytes are in the socket's buffers: behind a
// slow site link a copy can spend seconds there. A device whose quick
// re-ask (stallSource) fires meanwhile cancels and asks again, and that
// want-block is a new request, which SiteGrants grants (the same peer
// asking again): a second copy through the slow link (measured: 1.00–1.35
// copies per site in TestSitesBehindSlowUplinks under load). Refused, the
// device gets the copy already on its way.
type siteFilter struct {
	siteOf func(peer.ID) string
	size   func(cid.Cid) int64 // a block's size in the store (0 if absent): shares are bytes
	now    func() time.Time
	window time.Duration
	log    *slog.Logger // nil discards

	mu     sync.Mutex
	grants *policy.SiteGrants[string, string, peer.ID]
	// sent is when each block (multihash) was last handed to the network
	// for each peer; entries older than the window are swept once the map
	// could have doubled since the last sweep (nsent counts insertions).
	sent        map[peer.ID]map[string]time.Time
	nsent, kept int
}

func newSiteFilter(window time.Duration, siteOf func(peer.ID) string, size func(cid.Cid) int64) *siteFilter {
	return &siteFilter{siteOf: siteOf, size: size, now: time.Now, window: window,
		grants: policy.NewSiteGrants[string, string, peer.ID](window, content.AvgChunkSize),
		sent:   map[peer.ID]map[string]time.Time{}}
}

func (f *siteFilter) sweep(now time.Time) {
	f.kept = 0
	for p, m := range f.sent {
		for h, at := range m {
			if now.Sub(at) >= f.window {
				delete(m, h)
			}
		}
		if len(m) == 0 {
			delete(f.sent, p)
		}
		f.kept += len(m)
	}
	f.nsent = f.kept
}

// sending is told (by siteNet) that a message with blocks blks is being
// written to p, sentTo that the write returned (err: it failed). p is not
// sent those blocks again within the window (see siteFilter), and p's
// grants stay live while the write lasts: behind a slow link, or from a
// seed shared by many peers, it can take longer than the window.
func (f *siteFilter) sending(p peer.ID, blks []blocks.Block) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	f.grants.Sending(p, now)
	m := f.sent[p]
	if m == nil {
		m = map[string]time.Time{}
		f.sent[p] = m
	}
	for _, b := range blks {
		m[string(b.Cid().Hash())] = now
	}
	if f.nsent += len(blks); f.nsent >= max(4096, 2*f.kept) {
		f.sweep(now)
	}
}

func (f *siteFilter) sentTo(p peer.ID, blks []blocks.Block, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.grants.Sent(p, f.now())
	if err != nil {
		// Those blocks may be asked for and sent again.
		for _, b := range blks {
			delete(f.sent[p], string(b.Cid().Hash()))
		}
	}
}

// disconnected is told that bitswap lost p: what was on its way to p may
// be lost with the connection, so p may be sent it again.
func (f *siteFilter) disconnected(p peer.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sent, p)
}

// allow is bitswap's PeerBlockRequestFilter.
func (f *siteFilter) allow(p peer.ID, c cid.Cid) bool {
	site := f.siteOf(p)
	size := f.size(c)
	h := string(c.Hash())
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if at, ok := f.sent[p][h]; ok && now.Sub(at) < f.window {
		f.decided(p, c, "sent already")
		return false // on its way to p already
	}
	ok := f.grants.Allow(site, h, size, p, now)
	if ok {
		f.decided(p, c, "granted")
	} else {
		f.decided(p, c, "refused")
	}
	return ok
}

// decided logs a request's outcome at debug level: with the agents'
// "block received" lines, the timeline of a site's link (which blocks
// were asked for and not granted, when the seed had nothing to send).
func (f *siteFilter) decided(p peer.ID, c cid.Cid, outcome string) {
	if f.log != nil && f.log.Enabled(context.Background(), slog.LevelDebug) {
		f.log.Debug("block request", "cid", c, "from", p, "outcome", outcome)
	}
}

// siteNet tells a siteFilter when block sends start and end (and whether
// they failed) and of lost peers.
type siteNet struct {
	bsnetwork.BitSwapNetwork
	f *siteFilter
}

func (n siteNet) SendMessage(ctx context.Context, p peer.ID, m bsmsg.BitSwapMessage) error {
	blks := m.Blocks()
	if len(blks) == 0 {
		return n.BitSwapNetwork.SendMessage(ctx, p, m)
	}
	n.f.sending(p, blks)
	err := n.BitSwapNetwork.SendMessage(ctx, p, m)
	n.f.sentTo(p, blks, err)
	return err
}

func (n siteNet) Start(rs ...bsnetwork.Receiver) {
	wrapped := make([]bsnetwork.Receiver, len(rs))
	for i, r := range rs {
		wrapped[i] = siteReceiver{r, n.f}
	}
	n.BitSwapNetwork.Start(wrapped...)
}

type siteReceiver struct {
	bsnetwork.Receiver
	f *siteFilter
}

func (r siteReceiver) PeerDisconnected(p peer.ID) {
	r.f.disconnected(p)
	r.Receiver.PeerDisconnected(p)
}

// SiteOf names the site of a peer from the address it is connected from:
// peers behind one NAT share a public IPv4 address; on a private network a
// /24 (IPv4) or /64 (IPv6) is a site; a public IPv6 /56 is one customer.
// Loopback peers (tests, one machine) are each their own site.
func SiteOf(h host.Host) func(peer.ID) string {
	return func(p peer.ID) string {
		for _, c := range h.Network().ConnsToPeer(p) {
			if site, ok := siteOfAddr(c.RemoteMultiaddr(), p); ok {
				return site
			}
		}
		return "peer:" + p.String()
	}
}

// siteOfAddr is the site of a peer connected from a (TCP or QUIC: the IP
// is the address's first part either way), or false for an address
// without an IP.
func siteOfAddr(a ma.Multiaddr, p peer.ID) (string, bool) {
	ip, err := manet.ToIP(a)
	if err != nil {
		return "", false
	}
	return siteOfIP(ip, p), true
}

func siteOfIP(ip net.IP, p peer.ID) string {
	switch {
	case ip.IsLoopback():
		return "peer:" + p.String()
	case ip.To4() != nil && ip.IsPrivate():
		return (&net.IPNet{IP: ip.Mask(net.CIDRMask(24, 32)), Mask: net.CIDRMask(24, 32)}).String()
	case ip.To4() != nil:
		return ip.String()
	case ip.IsPrivate():
		return (&net.IPNet{IP: ip.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
	default:
		return (&net.IPNet{IP: ip.Mask(net.CIDRMask(56, 128)), Mask: net.CIDRMask(56, 128)}).String()
	}
}
