package sim

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/meshota/meshota/node/policy"
)

// Sample is one row of the time series.
type Sample struct {
	T           float64 // seconds since the release was published
	Installed   int     // devices running the release
	BytesSeed   float64 // cumulative bytes sent by the seed
	BytesPeers  float64 // cumulative bytes devices sent each other
	BytesWasted float64 // cumulative corrupt bytes from malicious peers
}

// Result is the outcome of one simulated rollout.
type Result struct {
	Strategy string
	Devices  int
	Sites    int
	Chunks   int
	// Installed holds each device's install time in seconds, -1 if it
	// never installed (outside the rollout, or out of time).
	Installed []float64
	// Eligible marks the devices in the final rollout stage.
	Eligible []bool
	// BySeed and ByPeers are each device's received bytes by source.
	BySeed, ByPeers                    []float64
	BytesSeed, BytesPeers, BytesWasted float64
	Series                             []Sample
	Events                             uint64
	Wall                               time.Duration
	End                                float64 // simulated seconds until the last event handled
	// Bound is the lower bound for this run's fleet (sites and holders of
	// the previous release are drawn from the seed).
	Bound Bound
}

// Progress receives the share of eligible devices installed so far.
type Progress func(done, total int)

// Simulate runs one rollout of the scenario with the given strategy and
// random seed. The same inputs give the same Result, bit for bit.
func Simulate(ctx context.Context, sc *Scenario, strategy string, seed uint64, progress Progress) (*Result, error) {
	t0 := time.Now()
	s, err := newState(sc, strategy, seed)
	if err != nil {
		return nil, err
	}
	total := s.n + s.m
	final := sc.Rollout[len(sc.Rollout)-1].Share
	wantInstalled := 0
	for i := range s.n {
		if policy.BucketInRollout(s.bucket[i], basisPoints(final)) {
			s.eligible[i] = true
			wantInstalled++
		}
	}
	// Devices already holding everything (a release identical to the
	// previous one) still wait for the manifest.
	for i, h := range gossipHops(s.rng, total, sc.Gossip.Degree) {
		s.announce[i] = float64(h) * sc.Gossip.HopLatency.Seconds()
		s.q.push(event{t: s.announce[i], kind: evAnnounce, a: int32(i)})
	}
	for k, st := range sc.Rollout {
		s.q.push(event{t: st.At.Seconds(), kind: evStage, a: int32(k)})
	}
	if p := sc.Churn.OfflineShare; p > 0 {
		for i := range s.n {
			if s.rng.Float64() < p {
				s.dev[i].online = false
				s.countHeld(int32(i), -1) // its previous-release chunks were counted online
			}
			s.q.push(event{t: s.churnDelay(int32(i)), kind: evChurn, a: int32(i)})
		}
	}
	// Partitions cut a random share of the sites.
	type cut struct{ sites []int32 }
	cuts := make([]cut, len(sc.Partitions))
	for k, p := range sc.Partitions {
		perm := s.rng.Perm(len(s.sites))
		n := max(1, int(math.Round(p.Sites*float64(len(s.sites)))))
		for _, si := range perm[:n] {
			cuts[k].sites = append(cuts[k].sites, int32(si))
		}
		s.q.push(event{t: p.From.Seconds(), kind: evPartition, a: int32(k)})
		s.q.push(event{t: p.To.Seconds(), kind: evPartition, a: int32(k), ver: 1})
	}
	bound := s.bound()
	s.sampleEvery = sc.Sample.Seconds()
	if s.sampleEvery <= 0 {
		s.sampleEvery = max(bound.Time/200, 1e-3)
	}
	s.q.push(event{t: 0, kind: evSample})

	maxT := sc.MaxTime.Seconds()
	var done []int32
	lastProgress := time.Now()
	for s.installed < wantInstalled {
		e, ok := s.next()
		if !ok {
			break
		}
		if e.t > maxT {
			break
		}
		s.now = e.t
		s.events++
		if s.q.seq > seqLimit {
			return nil, fmt.Errorf("%w: over %d queued events: more than this simulator can order", ErrInvalid, uint64(seqLimit))
		}

		switch e.kind {
		case evGroup:
			if e.a == s.seedIdx {
				done = s.seed.due(s.now, done[:0])
				for _, id := range done {
					s.seedSent(id)
				}
				continue
			}
			s.advance(e.a, s.now)
			done = done[:0]
			for _, id := range s.uploads(e.a) {
				f := &s.flows[id]
				if f.left <= eps || f.left <= f.rate*1e-9 {
					done = append(done, id)
				}
			}
			for _, id := range done {
				s.detach(id)
			}
			s.reschedule(e.a)
			for _, id := range done {
				s.finish(id)
			}
		case evFlowStart:
			f := &s.flows[e.a]
			if !f.live || f.gen != e.ver || f.active {
				continue
			}
			s.activate(e.a)
		case evAnnounce:
			d := e.a
			if e.ver == 0 && s.grants != nil && s.dev[d].online && s.dev[d].missing > 0 && !s.partitioned[s.dev[d].site] {
				// Like an agent, d first asks the seed for the release's
				// block list: the seed's grant rule sees d active in its
				// site before d asks for a chunk, a round trip later, so
				// the devices the manifest reached together share the
				// first blocks (policy.SiteGrants).
				s.toSeed(message{kind: msgBlockList, d: d})
				s.q.push(event{t: s.now + s.seedRTT, kind: evAnnounce, a: d, ver: 1})
				continue
			}
			if s.dev[d].online {
				s.dev[d].announced = true
				s.maybeInstallOrFetch(d)
			}
		case evStage:
			s.stageBP = basisPoints(sc.Rollout[e.a].Share)
			for i := range s.n {
				if s.dev[i].announced {
					s.maybeInstall(int32(i))
				}
			}
		case evChurn:
			s.toggle(e.a)
			if churnHook != nil {
				churnHook(s)
			}
			s.q.push(event{t: s.now + s.churnDelay(e.a), kind: evChurn, a: e.a})
		case evPartition:
			heal := e.ver == 1
			for _, si := range cuts[e.a].sites {
				s.seedPartition(si, !heal)
			}
			for _, si := range cuts[e.a].sites {
				s.partition(si, !heal)
			}
		case evRetry:
			d := e.a
			s.dev[d].retrying = false
			if !s.dev[d].online || s.dev[d].missing == 0 {
				break
			}
			if since := s.now - s.dev[d].lastEnd; since < stallTimeout*(1-1e-9) || !s.dev[d].idle {
				s.armStall(d) // chunks are still arriving: not stalled
				break
			}
			s.forgetWants(d)
			if s.dev[d].waiting {
				s.askSeed(d)
			}
		case evSeedMsg:
			m := s.seedIn.pop()
			switch m.kind {
			case msgWants:
				s.onWants(m)
			case msgBlockList:
				s.onBlockList(m)
			case msgCancel:
				s.onCancel(m)
			}
		case evSiteMsg:
			m := s.siteIn.pop()
			switch m.kind {
			case msgChunk:
				s.onChunk(m)
			case msgRefused:
				s.onRefused(m)
			case msgPartial:
				s.onPartial(m)
			}
		case evSample:
			s.sample()
			s.q.push(event{t: s.now + s.sampleEvery, kind: evSample})
			if progress != nil && time.Since(lastProgress) > 200*time.Millisecond {
				lastProgress = time.Now()
				progress(s.installed, wantInstalled)
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
		}
	}
	s.sample()
	if progress != nil {
		progress(s.installed, wantInstalled)
	}
	bySeed, byPeers := make([]float64, s.n), make([]float64, s.n)
	for i := range s.n {
		bySeed[i], byPeers[i] = s.dev[i].bySeed, s.dev[i].byPeers
	}
	return &Result{
		Strategy: strategy, Devices: s.n, Sites: len(s.sites), Chunks: s.nChunks,
		Installed: s.installAt[:s.n], Eligible: s.eligible[:s.n],
		BySeed: bySeed, ByPeers: byPeers,
		BytesSeed: s.bytesSeed, BytesPeers: s.bytesPeers, BytesWasted: s.bytesWasted,
		Series: s.series, Events: s.events, Wall: time.Since(t0), End: s.now, Bound: bound,
	}, nil
}

func (s *state) maybeInstallOrFetch(d int32) {
	if s.dev[d].missing == 0 {
		s.maybeInstall(d)
		return
	}
	s.tryFetch(d)
}

func (s *state) sample() {
	row := Sample{T: s.now, Installed: s.installed, BytesSeed: s.bytesSeed, BytesPeers: s.bytesPeers, BytesWasted: s.bytesWasted}
	if n := len(s.series); n > 0 && s.series[n-1].T == row.T {
		s.series[n-1] = row
		return
	}
	s.series = append(s.series, row)
}

// churnDelay draws how long device d stays in its current state.
func (s *state) churnDelay(d int32) float64 {
	p := s.sc.Churn.OfflineShare
	off := s.sc.Churn.MeanOffline.Seconds()
	mean := off * (1 - p) / p // online time keeps the offline share at p
	if !s.dev[d].online {
		mean = off
	}
	return s.rng.ExpFloat64() * mean
}

// toggle takes device d offline (its transfers end; what it holds stays
// on disk) or brings it back (it catches up on the manifest and resumes).
func (s *state) toggle(d int32) {
	if s.dev[d].online {
		s.dev[d].online = false
		if id := s.dev[d].downFlow; id >= 0 {
			src := s.flows[id].src
			s.abort(id)
			s.serveWaiting(s.dev[src].site, src)
		}
		if s.dev[d].atSeed {
			s.toSeed(message{kind: msgCancel, d: d, ses: s.dev[d].ses})
			s.endSession(d)
		}
		// Its uploads end too: their receivers look elsewhere.
		var victims []int32
		for _, id := range s.uploads(d) {
			victims = append(victims, s.flows[id].dst)
		}
		// Uploads still in their round trip hold a slot but no group
		// place: look for them only when there are some.
		if int(s.dev[d].upUsed) > len(s.uploads(d)) {
			for id := range s.flows {
				f := &s.flows[id]
				if f.live && !f.active && f.src == d {
					victims = append(victims, f.dst)
				}
			}
		}
		for _, v := range victims {
			if id := s.dev[v].downFlow; id >= 0 {
				s.abort(id)
			}
		}
		s.countHeld(d, -1)
		for _, v := range victims {
			s.tryFetch(v)
		}
		s.wakeSite(s.dev[d].site)
		return
	}
	s.dev[d].online = true
	s.countHeld(d, +1)
	if s.now >= s.announce[d] {
		s.dev[d].announced = true // caught up from a peer on reconnect
	}
	s.maybeInstallOrFetch(d)
	s.serveWaiting(s.dev[d].site, d)
}

// churnHook, set by tests, sees the state after every churn event.
var churnHook func(*state)

// countHeld adds delta to its site's count of online holders for every
// chunk d holds: d went offline (-1) or came back (+1).
func (s *state) countHeld(d int32, delta int32) {
	si := int(s.dev[d].site)
	lw := s.siteHas[si*s.words : (si+1)*s.words]
	if s.lanSmall(int32(si)) {
		o := &s.lan
		if delta > 0 {
			o.online[si] |= 1 << s.dev[d].sitePos
		} else {
			o.online[si] &^= 1 << s.dev[d].sitePos
		}
		holders := o.holders[si*s.nChunks : (si+1)*s.nChunks]
		for c, h := range holders {
			if s.has(d, int32(c)) {
				if h&o.online[si] != 0 {
					lw[c>>6] |= 1 << (c & 63)
				} else {
					lw[c>>6] &^= 1 << (c & 63)
				}
			}
		}
		return
	}
	base := si * s.nChunks
	for c := range s.nChunks {
		if s.has(d, int32(c)) {
			s.siteCount[base+c] += delta
			if s.siteCount[base+c] > 0 {
				lw[c>>6] |= 1 << (c & 63)
			} else {
				lw[c>>6] &^= 1 << (c & 63)
			}
		}
	}
}

// wakeSite makes the waiting devices of a site look for sources again.
func (s *state) wakeSite(si int32) {
	list := append([]int32(nil), s.siteWait[si]...)
	for _, w := range list {
		if s.dev[w].waiting && s.dev[w].idle {
			s.tryFetch(w)
		}
	}
}

// partition cuts site si from the WAN (its sessions with the seed end)
// or heals it; seedPartition is the seed's side.
func (s *state) partition(si int32, cut bool) {
	s.partitioned[si] = cut
	if cut {
		for _, d := range s.sites[si] {
			if s.dev[d].atSeed {
				s.endSession(d)
				s.tryFetch(d) // a LAN peer may help
			}
		}
		return
	}
	for _, d := range s.sites[si] {
		if s.dev[d].idle {
			s.tryFetch(d)
		}
	}
}

// gossipHops is each node's distance in hops from the seed (node n-1 is
// not special: the seed is an extra node n) over a random gossipsub mesh
// where every node keeps degree links to random others.
func gossipHops(rng *rand.Rand, n, degree int) []int32 {
	nodes := n + 1
	adj := make([][]int32, nodes)
	for i := range nodes {
		for range (degree + 1) / 2 {
			j := rng.IntN(nodes)
			if j == i {
				continue
			}
			adj[i] = append(adj[i], int32(j))
			adj[j] = append(adj[j], int32(i))
		}
	}
	hops := make([]int32, nodes)
	for i := range hops {
		hops[i] = -1
	}
	hops[n] = 0
	queue := []int32{int32(n)}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range adj[v] {
			if hops[w] < 0 {
				hops[w] = hops[v] + 1
				queue = append(queue, w)
			}
		}
	}
	maxHop := int32(0)
	for _, h := range hops {
		maxHop = max(maxHop, h)
	}
	for i, h := range hops {
		if h < 0 {
			hops[i] = maxHop + 1 // an isolated node learns from catch-up
		}
	}
	return hops[:n]
}

// next takes the earliest event from the groups' heap, the other
// events' heap, the FIFOs and the messages in flight (a message is
// returned as an event of kind evSeedMsg or evSiteMsg, to be popped from
// its FIFO).
func (s *state) next() (event, bool) {
	var first *fifo[event]
	var e *event
	if len(s.q.other) > 0 {
		e = &s.q.other[0]
	}
	for _, f := range [...]*fifo[event]{&s.stalls, &s.lanStarts} {
		if h := f.peek(); h != nil && (e == nil || h.before(e)) {
			first, e = f, h
		}
	}
	var msg event
	for k, f := range [...]*fifo[message]{&s.seedIn, &s.siteIn} {
		if m := f.peek(); m != nil && (e == nil || earlier(m.t, m.seq, e.t, e.seq)) {
			msg = event{t: m.t, seq: m.seq, kind: evSeedMsg + uint8(k)}
			first, e = nil, &msg
		}
	}
	if s.q.groups() > 0 {
		if g := &s.q.h[heapRoot]; e == nil || earlier(g.t, g.seq(), e.t, e.seq) {
			return s.q.popGroup(), true
		}
	}
	switch {
	case e == nil:
		return event{}, false
	case e == &msg:
		return msg, true
	case first != nil:
		return first.pop(), true
	}
	return heap.Pop(&s.q.other).(event), true
}
