package policy

import (
	"slices"
	"time"
)

// SiteGrants is the seed's "LAN first" rule: send each block about once
// per site, and spread a site's blocks evenly over its devices.
//
// Once per site: a request for a block that was granted to another peer of
// the same site within the window is refused, so that peer's neighbours
// fetch it over their LAN from the one that got it. After the window the
// block is granted again (the first peer may be gone); a grant lasts while
// its peer is still being sent blocks: however long a send under way
// takes (Sending to Sent: a seed shared by many peers can take longer than
// the window to send one block), and a window after the last one ended.
//
// Fair shares: each of a site's peers then serves its neighbours the blocks
// it got from the seed, so the one holding most grants sets the site's
// pace through its own uplink (a device granted everything must upload
// every block to each neighbour). A peer is therefore also refused a block
// nobody holds when it already holds more than its share: more than
// ShareSlack blocks' worth of bytes above the mean of the bytes granted to
// the site's active peers. Shares are bytes, not blocks: chunks are
// 128–512 KiB, and a small index or keyring block is not a chunk's worth
// of uplink. A refused block goes to the next neighbour that asks for it, which
// is below the mean; the devices of a site ask for the same blocks at about
// the same time (index order). A block refused for shares to as many peers
// as the site has other active peers goes to the next asker whatever its
// share, so a block every device asks for is granted without a stall even
// when each asker was above the mean when it asked.
//
// Active peers are those that asked within ShareHorizon; a peer that
// becomes active starts at the mean. A peer alone in its site (or whose
// neighbours stopped asking, being done or gone) is at the mean and always
// granted: a neighbour that stops asking is forgotten after ShareHorizon,
// before the refused peer's stall re-ask (StallTimeout), so it waits at
// most one stall.
//
// node/exchange applies it to bitswap requests (S = site name, B = block
// multihash, P = peer ID); sim/ applies it to simulated devices. It is not
// safe for concurrent use: callers lock. Times passed must not go
// backwards.
type SiteGrants[S, B, P comparable] struct {
	window time.Duration
	slack  int64 // bytes above its site's mean a peer may hold
	held   int   // grants and refusals held in the sites (live or not yet swept)
	// served is when each peer was last sent a block, and how many sends
	// to it are under way: a grant lasts while its peer is still being
	// served, however slowly (a saturated seed can take longer than the
	// window to send a peer what it was granted).
	served map[P]serving
	// sites hold their grants: one small map per site rather than one
	// map of every site's blocks (the simulator's national fleet holds
	// millions, and a lookup in a small map stays in the cache).
	sites map[S]*siteShares[B, P]
	// lastSite and lastShares are the site of the last request: a
	// device's wants come in runs (the simulator judges 64 at a time),
	// so most requests skip the lookup in sites.
	lastSite   S
	lastShares *siteShares[B, P]
	inserts    int // since the last sweep
	kept       int // grants left by the last sweep
	// epoch is the first time passed; times are held as durations since
	// it (tick), so comparing two of them is comparing integers:
	// t.Sub(u) == t.Sub(epoch) - u.Sub(epoch) when all carry a monotonic
	// clock reading (time.Now) or none do (the simulator's clock).
	epoch   time.Time
	started bool
}

// tick is a time passed to SiteGrants, as the duration since its epoch.
type tick = time.Duration

// serving is what SiteGrants keeps of a peer it sends blocks to.
type serving struct {
	at      tick  // the last send's start or end
	sending int32 // sends under way
}

// ShareSlack is how many blocks (of the caller's typical size: see
// NewSiteGrants) above its site's mean a peer may hold before it is
// refused blocks nobody holds. Above 0 so that peers asking in turn for
// the same blocks do not refuse one another by a block of rounding; 1
// rather than 2 (session 8): a device asking for a window of fresh blocks
// took three in a row, and the last blocks of a release then all went
// through that one device's uplink (docs/PERFORMANCE.md section 4,
// "Session 8").
const ShareSlack = 1

// ShareHorizon is how long a peer counts as active in its site after its
// last request. It is below StallTimeout, so that a neighbour that stopped
// asking no longer holds the mean up by the time a refused peer asks again.
const ShareHorizon = StallTimeout / 2

type grant[P comparable] struct {
	peer P
	at   tick
	// refusedBy, when not nil, marks no grant but a block refused for
	// shares to these peers since at. Peers, not refusals: bitswap asks
	// again (want-have, then want-block; rebroadcasts). A pointer keeps
	// the map's values small: refusals are the rare case.
	refusedBy *[]P
}

// siteShares is one site's active peers, least recently asking first, and
// the sum of their grants' bytes. The order is a doubly linked list through
// members, by index; freed entries are reused, so a site's steady state
// allocates nothing.
type siteShares[B, P comparable] struct {
	granted map[B]grant[P]
	peers   map[P]int32 // index in members
	members []member[P]
	head    int32 // least recently asking; -1 when none
	tail    int32 // most recently asking; -1 when none
	free    int32 // first free entry, linked through next; -1 when none
	bytes   int64
}

type member[P comparable] struct {
	peer       P
	asked      tick
	bytes      int64 // the site's mean when it became active, plus the bytes granted since
	prev, next int32
}

// NewSiteGrants returns an empty rule with the given window; block is the
// callers' typical block size in bytes (a chunk), of which a peer may
// hold ShareSlack above its site's mean.
func NewSiteGrants[S, B, P comparable](window time.Duration, block int64) *SiteGrants[S, B, P] {
	return &SiteGrants[S, B, P]{window: window, slack: ShareSlack * block,
		served: map[P]serving{}, sites: map[S]*siteShares[B, P]{}}
}

// tick converts a time passed by the caller; the first one is the epoch.
func (g *SiteGrants[S, B, P]) tick(t time.Time) tick {
	if !g.started {
		g.epoch, g.started = t, true
	}
	return t.Sub(g.epoch)
}

// Allow tells whether peer p of site may have block b, of size bytes, at
// now, and records the grant when it may. The same peer asking again is
// always allowed (bitswap asks want-have, then want-block).
func (g *SiteGrants[S, B, P]) Allow(site S, b B, size int64, p P, at time.Time) bool {
	now := g.tick(at)
	m, sh := g.asked(site, p, now)
	old, ok := sh.granted[b]
	if ok && old.refusedBy == nil && g.live(old, now) {
		if old.peer != p {
			return false
		}
		sh.granted[b] = grant[P]{peer: p, at: now}
		return true
	}
	var refusedBy *[]P
	since := now
	if ok && old.refusedBy != nil && now-old.at < g.window {
		refusedBy, since = old.refusedBy, old.at
	}
	// m.bytes > mean + slack, in integers. A block already refused
	// for shares to as many other peers as p has active neighbours goes to p
	// whatever its share: each may have been above the mean when it
	// asked, and none would ask again before a stall.
	again, others := false, 0
	if refusedBy != nil {
		again = slices.Contains(*refusedBy, p)
		others = len(*refusedBy)
	}
	if again {
		others--
	}
	if n := len(sh.peers); others < n-1 && m.bytes*int64(n) > sh.bytes+g.slack*int64(n) {
		if refusedBy == nil {
			refusedBy = &[]P{p}
		} else if !again {
			*refusedBy = append(*refusedBy, p)
		}
		g.put(sh, b, !ok, grant[P]{peer: p, at: since, refusedBy: refusedBy}, now)
		return false
	}
	m.bytes += size
	sh.bytes += size
	g.put(sh, b, !ok, grant[P]{peer: p, at: now}, now)
	return true
}

// put records a grant or refusal. It sweeps expired entries and idle
// peers once the map could have doubled since the last sweep: memory stays
// within about twice the live entries (plus 4096), at O(1) amortised cost
// per request.
func (g *SiteGrants[S, B, P]) put(sh *siteShares[B, P], b B, added bool, v grant[P], now tick) {
	if added {
		g.held++
	}
	sh.granted[b] = v
	if g.inserts++; g.inserts >= max(4096, g.kept) {
		g.sweep(now)
	}
}

// asked records that p of site asked at now and returns its share entry.
func (g *SiteGrants[S, B, P]) asked(site S, p P, now tick) (*member[P], *siteShares[B, P]) {
	sh := g.lastShares
	if sh == nil || g.lastSite != site {
		sh = g.sites[site]
		if sh == nil {
			sh = &siteShares[B, P]{granted: map[B]grant[P]{}, peers: map[P]int32{}, head: -1, tail: -1, free: -1}
			g.sites[site] = sh
		}
		g.lastSite, g.lastShares = site, sh
	}
	sh.expire(now)
	// The most recent asker is the tail: a run of one peer's wants skips
	// the lookup in peers.
	i := sh.tail
	if i >= 0 && sh.members[i].peer == p {
		m := &sh.members[i]
		m.asked = now
		return m, sh
	}
	i, ok := sh.peers[p]
	if !ok {
		// A peer that (re)joins starts at the mean: it takes its share of
		// what comes next, not a burst that would catch up on what its
		// neighbours got before (that burst would all go through its
		// uplink).
		var bytes int64
		if n := int64(len(sh.peers)); n > 0 {
			bytes = sh.bytes / n
			sh.bytes += bytes
		}
		i = sh.alloc(member[P]{peer: p, bytes: bytes})
		sh.peers[p] = i
		sh.pushBack(i)
	} else if i != sh.tail {
		sh.unlink(i)
		sh.pushBack(i)
	}
	m := &sh.members[i]
	m.asked = now
	return m, sh
}

// alloc stores m in a free entry of members and returns its index.
func (sh *siteShares[B, P]) alloc(m member[P]) int32 {
	if i := sh.free; i >= 0 {
		sh.free = sh.members[i].next
		sh.members[i] = m
		return i
	}
	sh.members = append(sh.members, m)
	return int32(len(sh.members) - 1)
}

func (sh *siteShares[B, P]) pushBack(i int32) {
	m := &sh.members[i]
	m.prev, m.next = sh.tail, -1
	if sh.tail >= 0 {
		sh.members[sh.tail].next = i
	} else {
		sh.head = i
	}
	sh.tail = i
}

func (sh *siteShares[B, P]) unlink(i int32) {
	m := &sh.members[i]
	if m.prev >= 0 {
		sh.members[m.prev].next = m.next
	} else {
		sh.head = m.next
	}
	if m.next >= 0 {
		sh.members[m.next].prev = m.prev
	} else {
		sh.tail = m.prev
	}
}

// expire forgets the peers that have not asked within ShareHorizon.
func (sh *siteShares[B, P]) expire(now tick) {
	for i := sh.head; i >= 0; i = sh.head {
		m := &sh.members[i]
		if now-m.asked < ShareHorizon {
			return
		}
		sh.unlink(i)
		delete(sh.peers, m.peer)
		sh.bytes -= m.bytes
		var zero P
		m.peer, m.next = zero, sh.free // drop the reference (P may hold memory)
		sh.free = i
	}
}

func (g *SiteGrants[S, B, P]) sweep(now tick) {
	for _, sh := range g.sites {
		for b, old := range sh.granted {
			if !g.live(old, now) {
				delete(sh.granted, b)
				g.held--
			}
		}
	}
	for p, v := range g.served {
		if v.sending == 0 && now-v.at >= g.window {
			delete(g.served, p)
		}
	}
	for s, sh := range g.sites {
		if sh.expire(now); len(sh.peers) == 0 && len(sh.granted) == 0 {
			delete(g.sites, s)
			if sh == g.lastShares {
				// Not reached today (a sweep follows a put into the
				// last site), but a stale cache would hide a site.
				g.lastShares = nil
			}
		}
	}
	g.inserts, g.kept = 0, g.held
}

// Sending records that a send of blocks to p starts at now (queued for a
// sender or being written): p's grants stay live until the matching Sent,
// and a window after it. Callers pair every Sending with one Sent.
// Entries are per peer (bounded by the peers a seed serves) and are swept
// with the grants once no send to the peer is under way.
func (g *SiteGrants[S, B, P]) Sending(p P, now time.Time) {
	v := g.served[p]
	v.at = g.tick(now)
	v.sending++
	g.served[p] = v
}

// Sent records that a send to p that began with Sending ended at now,
// whether its bytes left or it failed.
func (g *SiteGrants[S, B, P]) Sent(p P, now time.Time) {
	v := g.served[p]
	v.at = g.tick(now)
	if v.sending > 0 {
		v.sending--
	}
	g.served[p] = v
}

// live tells whether a grant still holds at now: within the window of
// the grant, while a send to its peer is under way, or within the window
// of the last block sent to its peer.
func (g *SiteGrants[S, B, P]) live(old grant[P], now tick) bool {
	if now-old.at < g.window {
		return true // whenever its peer was last served
	}
	v, ok := g.served[old.peer]
	return ok && (v.sending > 0 || now-v.at < g.window)
}

// Len is the number of grants and refusals held (live or not yet swept).
func (g *SiteGrants[S, B, P]) Len() int { return g.held }

// StallTimeout is how long a device's fetch may go without receiving a
// block before it asks every peer, the seed included, again for what is
// missing (node/exchange's default; the simulator's re-ask rule).
const StallTimeout = 10 * time.Second
