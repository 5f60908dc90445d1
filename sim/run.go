package sim

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
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
// random seed. The same inputs give the same Result, bit for bit,
// whatever the number of cores (GOMAXPROCS) it runs on.
func Simulate(ctx context.Context, sc *Scenario, strategy string, seed uint64, progress Progress) (*Result, error) {
	return simulateOn(ctx, sc, strategy, seed, runtime.GOMAXPROCS(0), progress)
}

// simulateOn is Simulate on the given number of workers.
func simulateOn(ctx context.Context, sc *Scenario, strategy string, seed uint64, workers int, progress Progress) (*Result, error) {
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
	hops := gossipHops(s.rng, total, sc.Gossip.Degree)
	offline := make([]bool, s.n)
	if p := sc.Churn.OfflineShare; p > 0 {
		for i := range offline {
			offline[i] = s.rng.Float64() < p
		}
	}
	// Partitions cut a random share of the sites.
	s.cuts = make([][]int32, len(sc.Partitions))
	for k, p := range sc.Partitions {
		perm := s.rng.Perm(len(s.sites))
		n := max(1, int(math.Round(p.Sites*float64(len(s.sites)))))
		for _, si := range perm[:n] {
			s.cuts[k] = append(s.cuts[k], int32(si))
		}
	}
	bound := s.bound()
	s.sampleEvery = sc.Sample.Seconds()
	if s.sampleEvery <= 0 {
		s.sampleEvery = max(bound.Time/200, 1e-3)
	}

	if sc.Churn.OfflineShare > 0 {
		s.siteRng = make([]*rand.Rand, len(s.sites))
		for si := range s.siteRng {
			s.siteRng[si] = rand.New(rand.NewPCG(seed, 0x6d6573686f7461+uint64(si+1)<<20))
		}
	}
	r := newRun(s, workers)
	for i, h := range hops {
		s.announce[i] = float64(h) * sc.Gossip.HopLatency.Seconds()
		r.siteLP(int32(i)).q.push(event{t: s.announce[i], kind: evAnnounce, a: int32(i)})
	}
	for _, w := range r.lps {
		for k, st := range sc.Rollout {
			w.q.push(event{t: st.At.Seconds(), kind: evStage, a: int32(k)})
		}
	}
	if sc.Churn.OfflineShare > 0 {
		for i := range s.n {
			if offline[i] {
				s.dev[i].online = false
				s.countHeld(int32(i), -1) // its previous-release chunks were counted online
			}
			r.siteLP(int32(i)).q.push(event{t: s.churnDelay(int32(i)), kind: evChurn, a: int32(i)})
		}
	}
	// Partitions are known in advance: each side hears of them at their
	// times, the seed of every cut site, a shard of its own.
	for k, p := range sc.Partitions {
		for _, w := range r.all {
			w.q.push(event{t: p.From.Seconds(), kind: evPartition, a: int32(k)})
			w.q.push(event{t: p.To.Seconds(), kind: evPartition, a: int32(k), ver: 1})
		}
	}
	if err := r.run(ctx, sc.MaxTime.Seconds(), wantInstalled, progress); err != nil {
		return nil, err
	}
	bySeed, byPeers := make([]float64, s.n), make([]float64, s.n)
	for i := range s.n {
		bySeed[i], byPeers[i] = s.dev[i].bySeed, s.dev[i].byPeers
	}
	res := &Result{
		Strategy: strategy, Devices: s.n, Sites: len(s.sites), Chunks: s.nChunks,
		Installed: s.installAt[:s.n], Eligible: s.eligible[:s.n],
		BySeed: bySeed, ByPeers: byPeers,
		Wall: time.Since(t0), Bound: bound,
	}
	r.results(res)
	return res, nil
}

// runUntil handles this logical process's events before end (and not
// after maxT), recording the time-series samples they pass.
func (s *state) runUntil(end, maxT float64) error {
	for {
		e, ok := s.next(end, maxT)
		if !ok {
			return nil
		}
		for s.tally != nil && s.nextSample <= e.t {
			s.record()
		}
		s.now = e.t
		// An event every process hears of (a stage, a partition) counts
		// once, at the first shard, whatever the number of shards.
		if e.kind != evStage && e.kind != evPartition || !s.isSeed && s.siteLo == 0 {
			s.events++
		}
		if s.q.seq > seqLimit {
			return fmt.Errorf("%w: over %d queued events: more than this simulator can order", ErrInvalid, uint64(seqLimit))
		}
		s.handle(e)
	}
}

// handle is one event of a logical process: the seed's (its flows'
// completions, messages to it, partitions) or a shard's sites'.
func (s *state) handle(e event) {
	switch e.kind {
	case evGroup:
		if e.a == s.seedIdx {
			s.done = s.seed.due(s.now, s.done[:0])
			for _, id := range s.done {
				s.seedSent(id)
			}
			return
		}
		s.advance(e.a, s.now)
		done := s.done[:0]
		for _, id := range s.uploads(e.a) {
			f := &s.flows[id]
			if f.left <= eps || f.left <= f.rate*1e-9 {
				done = append(done, id)
			}
		}
		s.done = done
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
			return
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
			return
		}
		if s.dev[d].online {
			s.dev[d].announced = true
			s.maybeInstallOrFetch(d)
		}
	case evStage:
		s.stageBP = basisPoints(s.sc.Rollout[e.a].Share)
		for si := s.siteLo; si < s.siteHi; si++ {
			for _, d := range s.sites[si] {
				if s.dev[d].announced {
					s.maybeInstall(d)
				}
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
		for _, si := range s.cuts[e.a] {
			if s.isSeed {
				s.seedPartition(si, !heal)
			} else if si >= s.siteLo && si < s.siteHi {
				s.partition(si, !heal)
			}
		}
	case evRetry:
		d := e.a
		s.dev[d].retrying = false
		if !s.dev[d].online || s.dev[d].missing == 0 {
			return
		}
		if since := s.now - s.dev[d].lastEnd; since < stallTimeout*(1-1e-9) || !s.dev[d].idle {
			s.armStall(d) // chunks are still arriving: not stalled
			return
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
	}
}

func (s *state) maybeInstallOrFetch(d int32) {
	if s.dev[d].missing == 0 {
		s.maybeInstall(d)
		return
	}
	s.tryFetch(d)
}

// record adds the time-series row of the next sample time: this
// process's totals over the events before it.
func (s *state) record() {
	s.tally = append(s.tally, Sample{T: s.nextSample, Installed: s.installed, BytesSeed: s.bytesSeed, BytesPeers: s.bytesPeers, BytesWasted: s.bytesWasted})
	s.samples++
	s.nextSample = float64(s.samples) * s.sampleEvery
}

// churnDelay draws how long device d stays in its current state.
func (s *state) churnDelay(d int32) float64 {
	p := s.sc.Churn.OfflineShare
	off := s.sc.Churn.MeanOffline.Seconds()
	mean := off * (1 - p) / p // online time keeps the offline share at p
	if !s.dev[d].online {
		mean = off
	}
	return s.siteRng[s.dev[d].site].ExpFloat64() * mean
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
			for _, v := range s.sites[s.dev[d].site] {
				if f := &s.flows[v]; f.live && !f.active && f.src == d {
					victims = append(victims, v)
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
// its FIFO), if it comes before end and not after maxT.
func (s *state) next(end, maxT float64) (event, bool) {
	var first *fifo[event]
	var e *event
	if len(s.q.other) > 0 {
		e = &s.q.other[0]
	}
	for _, f := range s.eventFIFOs() {
		if h := f.peek(); h != nil && (e == nil || h.before(e)) {
			first, e = f, h
		}
	}
	var msg event
	for k, f := range s.messageFIFOs() {
		if m := f.peek(); m != nil && (e == nil || earlier(m.t, m.seq, e.t, e.seq)) {
			msg = event{t: m.t, seq: m.seq, kind: evSeedMsg + uint8(k)}
			first, e = nil, &msg
		}
	}
	if s.q.groups() > 0 {
		if g := &s.q.h[heapRoot]; e == nil || earlier(g.t, g.seq(), e.t, e.seq) {
			if g.t >= end || g.t > maxT {
				return event{}, false
			}
			return s.q.popGroup(), true
		}
	}
	switch {
	case e == nil || e.t >= end || e.t > maxT:
		return event{}, false
	case e == &msg:
		return msg, true
	case first != nil:
		return first.pop(), true
	}
	return heap.Pop(&s.q.other).(event), true
}

// eventFIFOs and messageFIFOs are the queues besides the heaps that next
// takes events from and headTime looks at: one list, so neither misses
// one. The messages' order is evSeedMsg's and evSiteMsg's.
func (s *state) eventFIFOs() [2]*fifo[event] { return [...]*fifo[event]{&s.stalls, &s.lanStarts} }

func (s *state) messageFIFOs() [2]*fifo[message] {
	return [...]*fifo[message]{&s.seedIn, &s.siteIn}
}

// headTime is the time of the process's next event, +Inf if none.
func (s *state) headTime() float64 {
	t := math.Inf(1)
	if s.q.groups() > 0 {
		t = s.q.h[heapRoot].t
	}
	if len(s.q.other) > 0 {
		t = min(t, s.q.other[0].t)
	}
	for _, f := range s.eventFIFOs() {
		if h := f.peek(); h != nil {
			t = min(t, h.t)
		}
	}
	for _, f := range s.messageFIFOs() {
		if m := f.peek(); m != nil {
			t = min(t, m.t)
		}
	}
	return t
}
