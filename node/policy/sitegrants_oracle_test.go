package policy

// This file keeps the implementation of SiteGrants as it was before it
// was made cheaper (container/list, time.Time fields, one map of every
// site's grants), as the oracle of
// TestSiteGrantsMatchesOracle: the two must make the same decisions for
// every sequence of calls. It is a test oracle, not a second rule.

import (
	"container/list"
	"slices"
	"time"
)

type siteBlock[S, B comparable] struct {
	site  S
	block B
}

type oracleGrants[S, B, P comparable] struct {
	window  time.Duration
	slack   int64
	granted map[siteBlock[S, B]]oracleGrant[P]
	// served is when each peer was last sent a block: a grant lasts while
	// its peer is still being served, however slowly (a saturated seed
	// can take longer than the window to send a peer what it was granted).
	served  map[P]time.Time
	sending map[P]int // sends under way, by peer (absent: none)
	sites   map[S]*oracleShares[P]
	inserts int // since the last sweep
	kept    int // grants left by the last sweep
}

type oracleGrant[P comparable] struct {
	peer P
	at   time.Time
	// refusedBy, when not empty, marks no grant but a block refused for
	// shares to these peers since at. Peers, not refusals: bitswap asks
	// again (want-have, then want-block; rebroadcasts).
	refusedBy []P
}

// oracleShares is one site's active peers, least recently asking first, and
// the sum of their grants.
type oracleShares[P comparable] struct {
	peers  map[P]*list.Element // of *oracleMember[P]
	order  list.List
	grants int64 // bytes
}

type oracleMember[P comparable] struct {
	peer   P
	asked  time.Time
	grants int64 // the site's mean when it became active, plus the bytes granted since
}

// newOracleGrants returns an empty rule with the given window.
func newOracleGrants[S, B, P comparable](window time.Duration, block int64) *oracleGrants[S, B, P] {
	return &oracleGrants[S, B, P]{window: window, slack: ShareSlack * block, granted: map[siteBlock[S, B]]oracleGrant[P]{},
		served: map[P]time.Time{}, sending: map[P]int{}, sites: map[S]*oracleShares[P]{}}
}

// Allow tells whether peer p of site may have block b at now, and records
// the grant when it may. The same peer asking again is always allowed
// (bitswap asks want-have, then want-block).
func (g *oracleGrants[S, B, P]) Allow(site S, b B, size int64, p P, now time.Time) bool {
	m, sh := g.asked(site, p, now)
	key := siteBlock[S, B]{site, b}
	old, ok := g.granted[key]
	if ok && len(old.refusedBy) == 0 && g.live(old, now) {
		if old.peer != p {
			return false
		}
		g.granted[key] = oracleGrant[P]{peer: p, at: now}
		return true
	}
	var refusedBy []P
	since := now
	if ok && len(old.refusedBy) > 0 && now.Sub(old.at) < g.window {
		refusedBy, since = old.refusedBy, old.at
	}
	// m.grants > mean + ShareSlack, in integers. A block already refused
	// for shares to as many other peers as p has active neighbours goes to p
	// whatever its share: each may have been above the mean when it
	// asked, and none would ask again before a stall.
	again := slices.Contains(refusedBy, p)
	others := len(refusedBy)
	if again {
		others--
	}
	if n := sh.order.Len(); others < n-1 && m.grants*int64(n) > sh.grants+g.slack*int64(n) {
		if !again {
			refusedBy = append(refusedBy, p)
		}
		g.put(key, oracleGrant[P]{peer: p, at: since, refusedBy: refusedBy}, now)
		return false
	}
	m.grants += size
	sh.grants += size
	g.put(key, oracleGrant[P]{peer: p, at: now}, now)
	return true
}

// put records a grant or refusal. It sweeps expired entries and idle
// peers once the map could have doubled since the last sweep: memory stays
// within about twice the live entries (plus 4096), at O(1) amortised cost
// per request.
func (g *oracleGrants[S, B, P]) put(key siteBlock[S, B], v oracleGrant[P], now time.Time) {
	g.granted[key] = v
	if g.inserts++; g.inserts >= max(4096, g.kept) {
		g.sweep(now)
	}
}

// asked records that p of site asked at now and returns its share entry.
func (g *oracleGrants[S, B, P]) asked(site S, p P, now time.Time) (*oracleMember[P], *oracleShares[P]) {
	sh := g.sites[site]
	if sh == nil {
		sh = &oracleShares[P]{peers: map[P]*list.Element{}}
		g.sites[site] = sh
	}
	sh.expire(now)
	e := sh.peers[p]
	if e == nil {
		// A peer that (re)joins starts at the mean: it takes its share of
		// what comes next, not a burst that would catch up on what its
		// neighbours got before (that burst would all go through its
		// uplink).
		m := &oracleMember[P]{peer: p}
		if n := sh.order.Len(); n > 0 {
			m.grants = sh.grants / int64(n)
			sh.grants += m.grants
		}
		e = sh.order.PushBack(m)
		sh.peers[p] = e
	} else {
		sh.order.MoveToBack(e)
	}
	m := e.Value.(*oracleMember[P])
	m.asked = now
	return m, sh
}

// expire forgets the peers that have not asked within ShareHorizon.
func (sh *oracleShares[P]) expire(now time.Time) {
	for e := sh.order.Front(); e != nil; e = sh.order.Front() {
		m := e.Value.(*oracleMember[P])
		if now.Sub(m.asked) < ShareHorizon {
			return
		}
		sh.order.Remove(e)
		delete(sh.peers, m.peer)
		sh.grants -= m.grants
	}
}

func (g *oracleGrants[S, B, P]) sweep(now time.Time) {
	for k, old := range g.granted {
		if !g.live(old, now) {
			delete(g.granted, k)
		}
	}
	for p, at := range g.served {
		if g.sending[p] == 0 && now.Sub(at) >= g.window {
			delete(g.served, p)
		}
	}
	for s, sh := range g.sites {
		if sh.expire(now); sh.order.Len() == 0 {
			delete(g.sites, s)
		}
	}
	g.inserts, g.kept = 0, len(g.granted)
}

// Sending records that a send to p starts: p's grants stay live until
// the matching Sent, and a window after it.
func (g *oracleGrants[S, B, P]) Sending(p P, now time.Time) {
	g.served[p] = now
	g.sending[p]++
}

// Sent records that a send to p ended.
func (g *oracleGrants[S, B, P]) Sent(p P, now time.Time) {
	g.served[p] = now
	if g.sending[p] > 1 {
		g.sending[p]--
	} else {
		delete(g.sending, p)
	}
}

// live tells whether a grant still holds at now: within the window of
// the grant, or of the last block sent to its peer.
func (g *oracleGrants[S, B, P]) live(old oracleGrant[P], now time.Time) bool {
	if g.sending[old.peer] > 0 {
		return true
	}
	last := old.at
	if at, ok := g.served[old.peer]; ok && at.After(last) {
		last = at
	}
	return now.Sub(last) < g.window
}
