package policy

import "time"

// SiteGrants is the seed's "LAN first" rule: send each block about once
// per site. A request for a block that was granted to another peer of the
// same site within the window is refused, so that peer's neighbours fetch
// it over their LAN from the one that got it. Different blocks go to
// different peers of a site, which spreads the first copies over the site.
// After the window the block is granted again (the first peer may be gone).
//
// node/exchange applies it to bitswap requests (S = site name, B = block
// multihash, P = peer ID); sim/ applies it to simulated devices. It is not
// safe for concurrent use: callers lock.
type SiteGrants[S, B, P comparable] struct {
	window  time.Duration
	granted map[siteBlock[S, B]]grant[P]
	inserts int // since the last sweep
	kept    int // grants left by the last sweep
}

type siteBlock[S, B comparable] struct {
	site  S
	block B
}

type grant[P comparable] struct {
	peer P
	at   time.Time
}

// NewSiteGrants returns an empty rule with the given window.
func NewSiteGrants[S, B, P comparable](window time.Duration) *SiteGrants[S, B, P] {
	return &SiteGrants[S, B, P]{window: window, granted: map[siteBlock[S, B]]grant[P]{}}
}

// Allow tells whether peer p of site may have block b at now, and records
// the grant when it may. The same peer asking again is always allowed
// (bitswap asks want-have, then want-block).
func (g *SiteGrants[S, B, P]) Allow(site S, b B, p P, now time.Time) bool {
	key := siteBlock[S, B]{site, b}
	if old, ok := g.granted[key]; ok && old.peer != p && now.Sub(old.at) < g.window {
		return false
	}
	g.granted[key] = grant[P]{p, now}
	// Sweep expired grants once the map could have doubled since the last
	// sweep: memory stays within about twice the live grants (plus 4096),
	// at O(1) amortised cost per request.
	if g.inserts++; g.inserts >= max(4096, g.kept) {
		for k, old := range g.granted {
			if now.Sub(old.at) >= g.window {
				delete(g.granted, k)
			}
		}
		g.inserts, g.kept = 0, len(g.granted)
	}
	return true
}

// Len is the number of grants held (live or not yet swept).
func (g *SiteGrants[S, B, P]) Len() int { return len(g.granted) }

// StallTimeout is how long a device's fetch may go without receiving a
// block before it asks every peer, the seed included, again for what is
// missing (node/exchange's default; the simulator's re-ask rule).
const StallTimeout = 10 * time.Second
