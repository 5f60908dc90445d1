package sim

import "container/heap"

// Event kinds.
const (
	evGroup     uint8 = iota // a group's next flow completion (a = group)
	evFlowStart              // a request's latency elapsed (a = flow)
	evAnnounce               // the manifest reaches a device (a = device), then (ver = 1) its block list
	evStage                  // a rollout stage begins (a = stage)
	evChurn                  // a device goes offline or comes back (a = device)
	evPartition              // a partition begins or heals (a = partition, b = 1 at heal)
	evRetry                  // a stall check: a device re-asks if nothing arrived (a = device)
	evSeedMsg                // a message reaches the seed (seedIn's first)
	evSiteMsg                // a message reaches a site (siteIn's first)
)

type event struct {
	t    float64
	seq  uint64 // insertion order: ties resolve the same way every run
	kind uint8
	a    int32
	ver  uint32
}

func (a *event) before(b *event) bool { return earlier(a.t, a.seq, b.t, b.seq) }

// earlier orders events by time, then by insertion order.
func earlier(at float64, aseq uint64, bt float64, bseq uint64) bool {
	if at != bt {
		return at < bt
	}
	return aseq < bseq
}

// groupBits is how many low bits of a groupEntry's key hold the group:
// enough for the largest fleet a scenario may declare (50,000,000
// devices, as many malicious peers, and the seed).
const groupBits = 27

// maxSeq bounds the insertion numbers a groupEntry's key can hold (2^37,
// days of simulation at a million events a second); Simulate stops with
// an error well before (seqLimit), as one event can queue many.
const (
	maxSeq   = 1<<(64-groupBits) - 1
	seqLimit = maxSeq - 1<<32
)

// A groupEntry is a group's next completion in the queue: 16 bytes, so
// that the four children of a heap node fill one cache line (with whole
// events, 32 bytes, they spanned two or three, and taking the next event
// walks down a heap of ~100,000 groups). The key orders by insertion
// number (high bits) and names the group (low bits).
type groupEntry struct {
	t   float64
	key uint64
}

// before compares keys whole: their high bits, the insertion numbers,
// differ.
func (a *groupEntry) before(b *groupEntry) bool { return earlier(a.t, a.key, b.t, b.key) }

func (a *groupEntry) seq() uint64  { return a.key >> groupBits }
func (a *groupEntry) group() int32 { return int32(a.key & (1<<groupBits - 1)) }

// eventQueue holds the events not in a FIFO: the groups' completions in
// a 4-ary min-heap on (t, seq), written out by hand as it is the hot
// path (the container/heap interface boxes every push; a 4-ary heap
// halves the levels a pop walks down), and the rare other events (the
// announcements, churn, stages, samples) in a container/heap beside it.
//
// A group (a device's uploads, or the seed's) has at most one entry, its
// next completion, which set moves in place when the group's rates
// change: a group is rescheduled at every flow start and end, and stale
// entries left behind would be a third of all pops. A moved entry gets a
// new seq, as a new push would, so ties resolve as they would with one.
type eventQueue struct {
	// h is the heap from h[heapRoot] on: the children of h[p] are
	// h[4p-8 .. 4p-5], which start on a 64-byte boundary when h does (a
	// large slice is page aligned).
	h     []groupEntry
	pos   []int32 // per group: index of its entry in h, -1 if none
	other otherEvents
	seq   uint64
}

// heapRoot is the index of the heap's root in eventQueue.h (the entries
// before it are unused).
const heapRoot = 3

func newEventQueue(groups int) eventQueue {
	q := eventQueue{h: make([]groupEntry, heapRoot), pos: make([]int32, groups)}
	for i := range q.pos {
		q.pos[i] = -1
	}
	return q
}

// push queues an event of any kind but evGroup (set queues those).
func (q *eventQueue) push(e event) {
	q.seq++
	e.seq = q.seq
	heap.Push(&q.other, e)
}

// put stores e at index i and remembers where its group's entry is.
func (q *eventQueue) put(i int, e groupEntry) {
	q.h[i] = e
	q.pos[e.group()] = int32(i)
}

// set makes completion time t group gi's only entry.
func (q *eventQueue) set(gi int32, t float64) {
	q.seq++
	e := groupEntry{t: t, key: q.seq<<groupBits | uint64(gi)}
	i := q.pos[gi]
	if i < 0 {
		q.h = append(q.h, e)
		q.up(len(q.h)-1, e)
		return
	}
	if e.before(&q.h[i]) {
		q.up(int(i), e)
	} else {
		q.down(int(i), e)
	}
}

// unset removes group gi's entry, if any.
func (q *eventQueue) unset(gi int32) {
	i := q.pos[gi]
	if i < 0 {
		return
	}
	q.pos[gi] = -1
	n := len(q.h) - 1
	last := q.h[n]
	q.h = q.h[:n]
	if int(i) == n {
		return
	}
	if last.before(&q.h[i]) {
		q.up(int(i), last)
	} else {
		q.down(int(i), last)
	}
}

// groups is the number of group entries queued.
func (q *eventQueue) groups() int { return len(q.h) - heapRoot }

// up moves e from the hole at i towards the root to its place.
func (q *eventQueue) up(i int, e groupEntry) {
	for i > heapRoot {
		p := i/4 + 2
		if !e.before(&q.h[p]) {
			break
		}
		q.put(i, q.h[p])
		i = p
	}
	q.put(i, e)
}

// down moves e from the hole at i towards the leaves to its place.
func (q *eventQueue) down(i int, e groupEntry) {
	n := len(q.h)
	for {
		c := 4*i - 8
		if c >= n {
			break
		}
		m := q.least(c, n)
		if !q.h[m].before(&e) {
			break
		}
		q.put(i, q.h[m])
		i = m
	}
	q.put(i, e)
}

// least is the index of the least of the (up to four) children from c.
func (q *eventQueue) least(c, n int) int {
	m := c
	for k := c + 1; k < c+4 && k < n; k++ {
		if q.h[k].before(&q.h[m]) {
			m = k
		}
	}
	return m
}

// popGroup takes the earliest group entry out and returns it as an event.
// The hole at the root moves down to a leaf, each time taking the least
// child, and the last entry fills it from there up: the last entry
// belongs near the leaves, so this saves the comparison with it at every
// level that down makes.
func (q *eventQueue) popGroup() event {
	top := q.h[heapRoot]
	q.pos[top.group()] = -1
	n := len(q.h) - 1
	last := q.h[n]
	q.h = q.h[:n]
	if n == heapRoot {
		return event{t: top.t, seq: top.seq(), kind: evGroup, a: top.group()}
	}
	i := heapRoot
	for {
		c := 4*i - 8
		if c >= n {
			break
		}
		m := q.least(c, n)
		q.put(i, q.h[m])
		i = m
	}
	q.up(i, last)
	return event{t: top.t, seq: top.seq(), kind: evGroup, a: top.group()}
}

// otherEvents is a min-heap of events by (t, seq), for container/heap.
type otherEvents []event

func (h otherEvents) Len() int           { return len(h) }
func (h otherEvents) Less(i, j int) bool { return h[i].before(&h[j]) }
func (h otherEvents) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *otherEvents) Push(x any)        { *h = append(*h, x.(event)) }
func (h *otherEvents) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// fifo holds events (or messages) that are all queued the same delay
// after the time they are queued at (stall checks, request round trips,
// messages between the seed and the sites): they arrive in (t, seq)
// order, so a FIFO keeps them ordered at O(1) instead of the heap.
type fifo[T any] struct {
	items []T
	head  int
}

func (f *fifo[T]) push(e T) { f.items = append(f.items, e) }

// peek is the earliest item, nil if none.
func (f *fifo[T]) peek() *T {
	if f.head == len(f.items) {
		return nil
	}
	return &f.items[f.head]
}

func (f *fifo[T]) pop() T {
	e := f.items[f.head]
	f.head++
	if f.head > 4096 && 2*f.head > len(f.items) {
		f.items = append(f.items[:0], f.items[f.head:]...)
		f.head = 0
	}
	return e
}
