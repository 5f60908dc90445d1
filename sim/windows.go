package sim

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// A run is a conservative parallel simulation by site. The seed is one
// logical process, each site another: sites share nothing but the seed,
// and every message between the seed and a site arrives the one-way WAN
// latency L after it is sent (messages.go). So the run goes in windows
// [T, T+L), T the earliest event anywhere: within a window no message
// sent in it can arrive, and the seed and the sites (in shards of
// consecutive sites) handle their events apart, in parallel, on the
// workers. At the barrier the messages of the window are handed over, in
// an order that does not depend on the shards: to the seed by (time, site,
// sequence), to a site in the seed's order. A shard's events keep each
// site's own order (its sequence numbers only grow), sites' events
// commute, churn draws from a generator per site, and totals are sums of
// whole bytes (exact in any order), so a run gives the same bytes on any
// number of workers.
type run struct {
	base   *state
	seed   *state   // the seed's logical process
	lps    []*state // the shards of sites, each the sites from siteLo to siteHi
	all    []*state // the seed, then the shards: a window's tasks
	owner  []int32  // per site, its shard
	window float64
	inbox  []message // the seed's messages of the next window, being sorted
	// The workers: this goroutine and helpers, started once, that take
	// a window's tasks in turn (the seed first, the largest) until none
	// is left, so that a slow task does not hold the others up.
	helpers int
	start   []chan struct{}
	done    chan struct{}
	task    atomic.Int32
	errs    []error // per task
	end     float64
	maxT    float64
	stopped bool
}

// shardsPerWorker is how many shards of sites a run has per worker:
// enough that workers taking them in turn finish a window together. More
// shards also do less work, as a shard's heap is smaller (cachegrind,
// 10,000 devices: one worker on 1 shard 19.04 G instructions, on 4
// 18.38 G; two workers on 8 shards 18.09 G, on 16 17.85 G).
const shardsPerWorker = 8

// minWindow is the shortest window: a scenario without any WAN latency
// still gets messages a microsecond late rather than a run that cannot
// advance.
const minWindow = 1e-6

// fork is a logical process over s's devices and sites: it shares their
// arrays (each process writes only its own sites' and devices' entries)
// and has its own queue, messages, totals and samples.
func (s *state) fork() *state {
	c := *s
	c.q = newEventQueue(len(s.dev) + 1)
	c.stalls, c.lanStarts = fifo[event]{}, fifo[event]{}
	c.seedIn, c.siteIn = fifo[message]{}, fifo[message]{}
	c.outSeed, c.outSite, c.wantOut, c.wantIn = nil, nil, nil, nil
	c.done, c.tally = nil, nil
	return &c
}

func newRun(base *state, workers int) *run {
	nSites := len(base.sites)
	workers = max(1, min(workers, nSites))
	r := &run{base: base, window: base.wanDelay, owner: make([]int32, nSites)}
	r.seed = base.fork()
	r.seed.isSeed = true
	r.seed.flows, r.seed.freeFlows = nil, nil // the seed's own pool
	r.seed.seed = newSeedGroup(r.seed, nSites)
	r.all = append(r.all, r.seed)
	// Shards take consecutive sites, about as many devices each.
	shards := min(nSites, shardsPerWorker*workers)
	total := len(base.dev)
	si := 0
	for k := range shards {
		w := base.fork()
		w.siteLo = int32(si)
		for placed := 0; si < nSites && (k == shards-1 || placed < total/shards); si++ {
			placed += len(base.sites[si])
			r.owner[si] = int32(k)
		}
		w.siteHi = int32(si)
		w.tally = make([]Sample, 0, 256)
		r.lps = append(r.lps, w)
		r.all = append(r.all, w)
	}
	r.errs = make([]error, len(r.all))
	r.helpers = workers - 1
	r.done = make(chan struct{}, r.helpers)
	for range r.helpers {
		start := make(chan struct{})
		r.start = append(r.start, start)
		go func() {
			for range start {
				r.work()
				r.done <- struct{}{}
			}
		}()
	}
	return r
}

// work runs tasks of the current window until none is left.
func (r *run) work() {
	for {
		k := int(r.task.Add(1)) - 1
		if k >= len(r.all) {
			return
		}
		r.errs[k] = r.all[k].runUntil(r.end, r.maxT)
	}
}

// siteLP is the shard that simulates device d's site.
func (r *run) siteLP(d int32) *state { return r.lps[r.owner[r.base.dev[d].site]] }

// run simulates windows until want devices installed, nothing is left
// to happen, or maxT.
func (r *run) run(ctx context.Context, maxT float64, want int, progress Progress) error {
	r.maxT = maxT
	defer r.stop()
	lastProgress := time.Now()
	for r.installed() < want {
		t := math.Inf(1)
		for _, p := range r.all {
			t = min(t, p.headTime())
		}
		if t > maxT {
			break
		}
		if err := r.step(t + r.window); err != nil {
			return err
		}
		r.merge()
		if progress != nil && time.Since(lastProgress) > 200*time.Millisecond {
			lastProgress = time.Now()
			progress(r.installed(), want)
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	if progress != nil {
		progress(r.installed(), want)
	}
	return nil
}

// step runs one window on every process, on every worker. The channel
// operations order the helpers' work after this goroutine's writes
// (the merge) and before its reads.
func (r *run) step(end float64) error {
	r.end = end
	r.task.Store(0)
	for _, start := range r.start {
		start <- struct{}{}
	}
	r.work()
	for range r.helpers {
		<-r.done
	}
	for _, err := range r.errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *run) stop() {
	if !r.stopped {
		r.stopped = true
		for _, start := range r.start {
			close(start)
		}
	}
}

// merge hands the window's messages over at the barrier.
func (r *run) merge() {
	seed := r.seed
	for _, m := range seed.outSite {
		w := r.lps[r.owner[r.base.dev[m.d].site]]
		w.q.seq++
		m.seq = w.q.seq
		w.siteIn.push(m)
	}
	seed.outSite = seed.outSite[:0]

	r.inbox = r.inbox[:0]
	for _, w := range r.lps {
		r.inbox = append(r.inbox, w.outSeed...)
	}
	slices.SortFunc(r.inbox, func(a, b message) int {
		if c := cmp.Compare(a.t, b.t); c != 0 {
			return c
		}
		if c := cmp.Compare(r.base.dev[a.d].site, r.base.dev[b.d].site); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	if seed.seedIn.peek() == nil {
		// The last window's are all handled (a message can be left only
		// when rounding puts it at the very end of the next window).
		seed.wantIn = seed.wantIn[:0]
	}
	for _, m := range r.inbox {
		if m.kind == msgWants && m.n > 0 {
			from := r.lps[r.owner[r.base.dev[m.d].site]].wantOut[m.c : m.c+m.n]
			m.c = int32(len(seed.wantIn))
			seed.wantIn = append(seed.wantIn, from...)
		}
		seed.q.seq++
		m.seq = seed.q.seq
		seed.seedIn.push(m)
	}
	for _, w := range r.lps {
		w.outSeed, w.wantOut = w.outSeed[:0], w.wantOut[:0]
	}
}

func (r *run) installed() int {
	n := 0
	for _, w := range r.lps {
		n += w.installed
	}
	return n
}

// results fills in the totals and the time series: sums over the
// shards, and the run's end (the last event handled).
func (r *run) results(res *Result) {
	end := 0.0
	for _, p := range r.all {
		res.Events += p.events
		end = max(end, p.now)
	}
	res.End = end
	for _, w := range r.lps {
		for w.nextSample <= end {
			w.record() // no event of w's between the sample and the end
		}
	}
	var last Sample
	for j := range r.lps[0].tally {
		row := Sample{T: r.lps[0].tally[j].T}
		for _, w := range r.lps {
			row.add(w.tally[j])
		}
		res.Series = append(res.Series, row)
	}
	last.T = end
	for _, w := range r.lps {
		last.add(Sample{Installed: w.installed, BytesSeed: w.bytesSeed, BytesPeers: w.bytesPeers, BytesWasted: w.bytesWasted})
	}
	if n := len(res.Series); n > 0 && res.Series[n-1].T == last.T {
		res.Series[n-1] = last
	} else {
		res.Series = append(res.Series, last)
	}
	res.BytesSeed, res.BytesPeers, res.BytesWasted = last.BytesSeed, last.BytesPeers, last.BytesWasted
}

// add sums another process's counts into x (not its time).
func (x *Sample) add(y Sample) {
	x.Installed += y.Installed
	x.BytesSeed += y.BytesSeed
	x.BytesPeers += y.BytesPeers
	x.BytesWasted += y.BytesWasted
}
