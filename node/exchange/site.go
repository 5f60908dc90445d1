package exchange

import (
	"net"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/meshota/meshota/node/policy"
)

// siteFilter applies policy.SiteGrants (send each block about once per
// site, spread over the site's devices) to bitswap's block requests; sites
// come from siteOf.
type siteFilter struct {
	siteOf func(peer.ID) string
	now    func() time.Time

	mu     sync.Mutex
	grants *policy.SiteGrants[string, string, peer.ID]
}

func newSiteFilter(window time.Duration, siteOf func(peer.ID) string) *siteFilter {
	return &siteFilter{siteOf: siteOf, now: time.Now, grants: policy.NewSiteGrants[string, string, peer.ID](window)}
}

// served is told of every block message sent to p (bitswap's tracer):
// p's grants last while it is being served.
func (f *siteFilter) served(p peer.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.grants.Served(p, f.now())
}

// allow is bitswap's PeerBlockRequestFilter.
func (f *siteFilter) allow(p peer.ID, c cid.Cid) bool {
	site := f.siteOf(p)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.grants.Allow(site, string(c.Hash()), p, f.now())
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
