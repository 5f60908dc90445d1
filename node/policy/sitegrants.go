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
	// served is when each peer was last sent a block: a grant lasts while
	// its peer is still being served, however slowly (a saturated seed
	// can take longer than the window to send a peer what it was granted).
	served  map[P]time.Time
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
	return &SiteGrants[S, B, P]{window: window, granted: map[siteBlock[S, B]]grant[P]{}, served: map[P]time.Time{}}
}

// Allow tells whether peer p of site may have block b at now, and records
// the grant when it may. The same peer asking again is always allowed
// (bitswap asks want-have, then want-block).
func (g *SiteGrants[S, B, P]) Allow(site S, b B, p P, now time.Time) bool {
	key := siteBlock[S, B]{site, b}
	if old, ok := g.granted[key]; ok && old.peer != p && g.live(old, now) {
		return false
	}
	g.granted[key] = grant[P]{p, now}
	// Sweep expired grants once the map could have doubled since the last
	// sweep: memory stays within about twice the live grants (plus 4096),
	// at O(1) amortised cost per request.
	if g.inserts++; g.inserts >= max(4096, g.kept) {
		for k, old := range g.granted {
			if !g.live(old, now) {
				delete(g.granted, k)
			}
		}
		for p, at := range g.served {
			if now.Sub(at) >= g.window {
				delete(g.served, p)
			}
		}
		g.inserts, g.kept = 0, len(g.granted)
	}
	return true
}

// Served records that peer p was sent a block at now: its grants stay
// live for a window from now.
// Entries are per peer (bounded by the peers a seed serves) and are swept
// with the grants.
func (g *SiteGrants[S, B, P]) Served(p P, now time.Time) { g.served[p] = now }

// live tells whether a grant still holds at now: within the window of
// the grant, or of the last block sent to its peer.
func (g *SiteGrants[S, B, P]) live(old grant[P], now time.Time) bool {
	last := old.at
	if at, ok := g.served[old.peer]; ok && at.After(last) {
		last = at
	}
	return now.Sub(last) < g.window
}

// Len is the number of grants held (live or not yet swept).
func (g *SiteGrants[S, B, P]) Len() int { return len(g.granted) }

// StallTimeout is how long a device's fetch may go without receiving a
// block before it asks every peer, the seed included, again for what is
// missing (node/exchange's default; the simulator's re-ask rule).
const StallTimeout = 10 * time.Second
