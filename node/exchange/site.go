package exchange

import (
	"net"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"
)

// siteFilter makes a seed send each block about once per site: a request
// for a block that was granted to another peer of the same site within
// the window is answered DONT_HAVE, so that peer's neighbours fetch it
// over their LAN from the one that got it. Different blocks go to
// different peers of a site, which spreads the first copies over the site.
// After the window the block is served again (the first peer may be gone).
type siteFilter struct {
	window time.Duration
	siteOf func(peer.ID) string
	now    func() time.Time

	mu      sync.Mutex
	granted map[string]grant // site + block multihash
	inserts int
}

type grant struct {
	peer peer.ID
	at   time.Time
}

func newSiteFilter(window time.Duration, siteOf func(peer.ID) string) *siteFilter {
	return &siteFilter{window: window, siteOf: siteOf, now: time.Now, granted: map[string]grant{}}
}

// allow is bitswap's PeerBlockRequestFilter.
func (f *siteFilter) allow(p peer.ID, c cid.Cid) bool {
	key := f.siteOf(p) + "\x00" + string(c.Hash())
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if g, ok := f.granted[key]; ok && g.peer != p && now.Sub(g.at) < f.window {
		return false
	}
	f.granted[key] = grant{p, now}
	if f.inserts++; f.inserts%4096 == 0 {
		for k, g := range f.granted {
			if now.Sub(g.at) >= f.window {
				delete(f.granted, k)
			}
		}
	}
	return true
}

// SiteOf names the site of a peer from the address it is connected from:
// peers behind one NAT share a public IPv4 address; on a private network a
// /24 (IPv4) or /64 (IPv6) is a site; a public IPv6 /56 is one customer.
// Loopback peers (tests, one machine) are each their own site.
func SiteOf(h host.Host) func(peer.ID) string {
	return func(p peer.ID) string {
		for _, c := range h.Network().ConnsToPeer(p) {
			ip, err := manet.ToIP(c.RemoteMultiaddr())
			if err != nil {
				continue
			}
			return siteOfIP(ip, p)
		}
		return "peer:" + p.String()
	}
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
