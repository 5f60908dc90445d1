package sim

import (
	"container/heap"
	"math"
)

// seedGroup holds the seed's flows. They share the seed's uplink (u_s)
// and, per site, the site's downlink (D); every flow also has the same
// cap (devices are alike). Max-min fairness on this two-level tree gives
// every flow into a site with k seed flows the rate
//
//	min(level(k), λ),  level(k) = min(cap, D/k),
//
// where λ is the seed's water level, found by progressive filling over a
// histogram of k. A site is "site-limited" when level(k) < λ and
// "λ-limited" otherwise.
//
// A fleet of 100,000 devices can have tens of thousands of seed flows, and
// λ moves whenever one starts or ends, so rates are never stored per flow.
// Each site has a virtual clock V_s (bytes a flow into it has received
// since some origin); a flow's tag is V_s at its start plus its size and it
// completes when V_s reaches the tag. λ-limited sites share one clock
// V_λ (V_s = V_λ + offset_s), so a change of λ costs nothing for them;
// site-limited sites run their own clock at level(k). Completions are kept
// in two heaps, one in V_λ units and one in real time, neither of which a
// change of λ invalidates. Only sites whose regime flips when λ crosses
// their level are touched, bucket by bucket.
type seedGroup struct {
	s       *state
	capRate float64 // per-flow cap
	down    float64 // site downlink
	up      float64 // seed uplink

	lambda float64 // +Inf when the seed is not the bottleneck
	vl, tl float64 // V_λ at time tl

	sites []seedSite
	// hist[k] = sites with k active seed flows; byK[k] lists them.
	hist  []int32
	byK   [][]int32
	flows int32 // active seed flows

	heapA siteHeap // λ-limited: key = min tag - offset (V_λ units)
	heapB siteHeap // site-limited: key = completion time (seconds)
}

type seedSite struct {
	flows   []int32
	pos     int32 // index in byK[len(flows)]
	limited bool  // site-limited
	v0, t0  float64
	offset  float64
	ver     uint32
}

func newSeedGroup(s *state, nSites int) *seedGroup {
	g := &seedGroup{
		s: s, capRate: min(float64(s.devDown), s.wanCap), down: float64(s.siteDown), up: float64(s.sc.Seed.Uplink),
		lambda: math.Inf(1), sites: make([]seedSite, nSites),
		hist: make([]int32, 2), byK: make([][]int32, 2),
	}
	return g
}

func (g *seedGroup) level(k int) float64 { return min(g.capRate, g.down/float64(k)) }

func (g *seedGroup) advance(now float64) {
	if !math.IsInf(g.lambda, 1) {
		g.vl += g.lambda * (now - g.tl)
	}
	g.tl = now
}

// clock is V_s for site si at time now (the group advanced to now).
func (g *seedGroup) clock(si int32, now float64) float64 {
	st := &g.sites[si]
	if st.limited {
		return st.v0 + g.level(len(st.flows))*(now-st.t0)
	}
	return g.vl + st.offset
}

func (g *seedGroup) add(id int32, now float64) {
	f := &g.s.flows[id]
	g.advance(now)
	si := f.site
	v := g.clock(si, now)
	f.tag = v + f.left
	g.change(si, now, v, func(st *seedSite) { st.flows = append(st.flows, id) })
}

func (g *seedGroup) remove(id int32, now float64) {
	f := &g.s.flows[id]
	g.advance(now)
	si := f.site
	v := g.clock(si, now)
	f.left = max(f.tag-v, 0)
	g.change(si, now, v, func(st *seedSite) {
		for i, x := range st.flows {
			if x == id {
				st.flows[i] = st.flows[len(st.flows)-1]
				st.flows = st.flows[:len(st.flows)-1]
				return
			}
		}
	})
}

// change applies edit to site si (whose clock reads v now), then moves λ
// and the regimes it flips, and queues the next completion.
func (g *seedGroup) change(si int32, now, v float64, edit func(*seedSite)) {
	st := &g.sites[si]
	oldK := len(st.flows)
	g.unbucket(si, oldK)
	edit(st)
	newK := len(st.flows)
	g.flows += int32(newK - oldK)
	g.bucket(si, newK)

	oldLambda := g.lambda
	g.lambda = g.computeLambda()
	// Site si: its level changed; re-express its clock in the new regime.
	g.express(si, now, v)
	// Other sites whose level lies between the old and the new λ flip.
	lo, hi := min(oldLambda, g.lambda), max(oldLambda, g.lambda)
	if lo != hi {
		for k := 1; k < len(g.byK); k++ {
			if l := g.level(k); l < lo || l >= hi {
				continue
			}
			for _, other := range g.byK[k] {
				if other != si {
					// Its clock under the old λ: only λ-limited clocks
					// depend on λ, and V_λ is already advanced to now.
					g.express(other, now, g.clock(other, now))
				}
			}
		}
	}
	g.schedule()
}

// express sets site si's regime for the current λ with its clock reading
// v at now, and queues its next completion.
func (g *seedGroup) express(si int32, now, v float64) {
	st := &g.sites[si]
	st.ver++
	k := len(st.flows)
	if k == 0 {
		return
	}
	st.limited = g.level(k) < g.lambda
	minTag := math.Inf(1)
	for _, id := range st.flows {
		minTag = min(minTag, g.s.flows[id].tag)
	}
	if len(g.heapA)+len(g.heapB) > 4*len(g.sites)+2048 {
		g.compact()
	}
	if st.limited {
		st.v0, st.t0 = v, now
		g.heapB.push(siteEntry{key: now + max(minTag-v, 0)/g.level(k), site: si, ver: st.ver})
		return
	}
	st.offset = v - g.vl
	g.heapA.push(siteEntry{key: minTag - st.offset, site: si, ver: st.ver})
}

func (g *seedGroup) computeLambda() float64 {
	demand := 0.0
	for k := 1; k < len(g.hist); k++ {
		demand += float64(g.hist[k]) * float64(k) * g.level(k)
	}
	if demand <= g.up {
		return math.Inf(1)
	}
	c, rem := g.up, float64(g.flows)
	for k := len(g.hist) - 1; k >= 1; k-- { // smallest levels first
		n := float64(g.hist[k]) * float64(k)
		if n == 0 {
			continue
		}
		if l := g.level(k); l*rem < c {
			c -= l * n
			rem -= n
			continue
		}
		return c / rem
	}
	return math.Inf(1)
}

func (g *seedGroup) bucket(si int32, k int) {
	if k == 0 {
		return
	}
	for len(g.byK) <= k {
		g.byK = append(g.byK, nil)
		g.hist = append(g.hist, 0)
	}
	g.sites[si].pos = int32(len(g.byK[k]))
	g.byK[k] = append(g.byK[k], si)
	g.hist[k]++
}

func (g *seedGroup) unbucket(si int32, k int) {
	if k == 0 {
		return
	}
	list := g.byK[k]
	p := g.sites[si].pos
	last := list[len(list)-1]
	list[p] = last
	g.sites[last].pos = p
	g.byK[k] = list[:len(list)-1]
	g.hist[k]--
}

// rate is the current rate of active flow id.
func (g *seedGroup) rate(id int32) float64 {
	k := len(g.sites[g.s.flows[id].site].flows)
	return min(g.level(k), g.lambda)
}

// topB and topA drop stale entries and return the heaps' valid tops.
func (g *seedGroup) topB() (siteEntry, bool) {
	for len(g.heapB) > 0 {
		e := g.heapB.top()
		if st := &g.sites[e.site]; e.ver == st.ver && st.limited {
			return e, true
		}
		g.heapB.pop()
	}
	return siteEntry{}, false
}

func (g *seedGroup) topA() (siteEntry, bool) {
	if math.IsInf(g.lambda, 1) {
		return siteEntry{}, false
	}
	for len(g.heapA) > 0 {
		e := g.heapA.top()
		if st := &g.sites[e.site]; e.ver == st.ver && !st.limited {
			// As a time: when V_λ reaches the key.
			e.key = g.tl + max(e.key-g.vl, 0)/g.lambda
			return e, true
		}
		g.heapA.pop()
	}
	return siteEntry{}, false
}

// next is the time of the seed's next flow completion and which heap
// holds it.
func (g *seedGroup) next() (float64, *siteHeap) {
	b, okB := g.topB()
	a, okA := g.topA()
	switch {
	case okA && (!okB || a.key < b.key):
		return a.key, &g.heapA
	case okB:
		return b.key, &g.heapB
	}
	return math.Inf(1), nil
}

func (g *seedGroup) schedule() {
	t, _ := g.next()
	if math.IsInf(t, 1) {
		g.s.q.unset(g.s.seedIdx)
		return
	}
	g.s.q.set(g.s.seedIdx, t)
}

// due takes out and returns the flows complete at now.
func (g *seedGroup) due(now float64, out []int32) []int32 {
	g.advance(now)
	for {
		t, h := g.next()
		if h == nil || t > now+1e-9*max(1, now) {
			break
		}
		si := h.pop().site
		v := g.clock(si, now)
		// The heap says the site's first flow is due. Clocks are sums of
		// large numbers, so allow rounding (a millionth of a flow), and
		// never leave the due flow behind: that would loop.
		var done []int32
		first, firstTag := int32(-1), math.Inf(1)
		for _, id := range g.sites[si].flows {
			f := &g.s.flows[id]
			if f.tag-v <= max(eps, 1e-6*f.size) {
				done = append(done, id)
			}
			if f.tag < firstTag {
				first, firstTag = id, f.tag
			}
		}
		if len(done) == 0 {
			done = append(done, first)
		}
		for _, id := range done {
			g.remove(id, now)
			out = append(out, id)
		}
	}
	g.schedule()
	return out
}

// compact drops stale heap entries once they outnumber the sites.
func (g *seedGroup) compact() {
	for _, h := range []*siteHeap{&g.heapA, &g.heapB} {
		if len(*h) < 2*len(g.sites)+1024 {
			continue
		}
		limited := h == &g.heapB
		keep := (*h)[:0]
		for _, e := range *h {
			if st := &g.sites[e.site]; e.ver == st.ver && st.limited == limited {
				keep = append(keep, e)
			}
		}
		*h = keep
		heap.Init(h)
	}
}

type siteEntry struct {
	key  float64
	site int32
	ver  uint32
}

// siteHeap is a min-heap of siteEntry by key, then site, for
// container/heap (seed events are a few percent of all events, so the
// standard heap's boxing costs nothing worth a hand-written one).
type siteHeap []siteEntry

func (q siteHeap) Len() int { return len(q) }
func (q siteHeap) Less(i, j int) bool {
	if q[i].key != q[j].key {
		return q[i].key < q[j].key
	}
	return q[i].site < q[j].site
}
func (q siteHeap) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *siteHeap) Push(x any)   { *q = append(*q, x.(siteEntry)) }
func (q *siteHeap) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func (q *siteHeap) push(e siteEntry) { heap.Push(q, e) }
func (q *siteHeap) pop() siteEntry   { return heap.Pop(q).(siteEntry) }
func (q siteHeap) top() siteEntry    { return q[0] }
