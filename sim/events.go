package sim

// Event kinds.
const (
	evGroup     uint8 = iota // a group's next flow completion (a = group)
	evFlowStart              // a request's latency elapsed (a = flow)
	evAnnounce               // the manifest reaches a device (a = device), then (ver = 1) its block list
	evStage                  // a rollout stage begins (a = stage)
	evChurn                  // a device goes offline or comes back (a = device)
	evPartition              // a partition begins or heals (a = partition, b = 1 at heal)
	evRetry                  // a stall check: a device re-asks if nothing arrived (a = device)
	evSample                 // a time-series row
)

type event struct {
	t    float64
	seq  uint64 // insertion order: ties resolve the same way every run
	kind uint8
	a    int32
	ver  uint32
}

// eventQueue is a 4-ary min-heap on (t, seq), written out by hand: the
// container/heap interface boxes every push, and this is the hot path
// (a 4-ary heap halves the levels a pop walks down).
//
// A group (a device's uploads, or the seed's) has at most one entry, its
// next completion, which set moves in place when the group's rates
// change: a group is rescheduled at every flow start and end, and stale
// entries left behind would be a third of all pops. A moved entry gets a
// new seq, as a new push would, so ties resolve as they would with one.
type eventQueue struct {
	h   []event
	seq uint64
	pos []int32 // per group: index of its evGroup entry in h, -1 if none
}

func newEventQueue(groups int) eventQueue {
	q := eventQueue{pos: make([]int32, groups)}
	for i := range q.pos {
		q.pos[i] = -1
	}
	return q
}

func (a *event) before(b *event) bool {
	if a.t != b.t {
		return a.t < b.t
	}
	return a.seq < b.seq
}

// put stores e at index i and, for a group's entry, remembers where.
func (q *eventQueue) put(i int, e event) {
	q.h[i] = e
	if e.kind == evGroup {
		q.pos[e.a] = int32(i)
	}
}

func (q *eventQueue) push(e event) {
	q.seq++
	e.seq = q.seq
	q.h = append(q.h, e)
	q.up(len(q.h)-1, e)
}

// set makes e (an evGroup event) its group's only entry.
func (q *eventQueue) set(e event) {
	i := q.pos[e.a]
	if i < 0 {
		q.push(e)
		return
	}
	q.seq++
	e.seq = q.seq
	if e.before(&q.h[i]) {
		q.up(int(i), e)
	} else {
		q.down(int(i), e)
	}
}

// unset removes group a's entry, if any.
func (q *eventQueue) unset(a int32) {
	i := q.pos[a]
	if i < 0 {
		return
	}
	q.pos[a] = -1
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

// up moves e from the hole at i towards the root to its place.
func (q *eventQueue) up(i int, e event) {
	for i > 0 {
		p := (i - 1) / 4
		if !e.before(&q.h[p]) {
			break
		}
		q.put(i, q.h[p])
		i = p
	}
	q.put(i, e)
}

// down moves e from the hole at i towards the leaves to its place.
func (q *eventQueue) down(i int, e event) {
	n := len(q.h)
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < n; k++ {
			if q.h[k].before(&q.h[m]) {
				m = k
			}
		}
		if !q.h[m].before(&e) {
			break
		}
		q.put(i, q.h[m])
		i = m
	}
	q.put(i, e)
}

func (q *eventQueue) pop() event {
	top := q.h[0]
	if top.kind == evGroup {
		q.pos[top.a] = -1
	}
	n := len(q.h) - 1
	last := q.h[n]
	q.h = q.h[:n]
	if n > 0 {
		q.down(0, last)
	}
	return top
}

func (q *eventQueue) len() int { return len(q.h) }

// fifo holds events that are all queued the same delay after the time
// they are queued at (stall checks, request round trips): they arrive in
// (t, seq) order, so a FIFO keeps them ordered at O(1) instead of the heap.
type fifo struct {
	ev   []event
	head int
}

func (f *fifo) push(e event) { f.ev = append(f.ev, e) }

// peek is the earliest event, nil if none.
func (f *fifo) peek() *event {
	if f.head == len(f.ev) {
		return nil
	}
	return &f.ev[f.head]
}

func (f *fifo) pop() event {
	e := f.ev[f.head]
	f.head++
	if f.head > 4096 && 2*f.head > len(f.ev) {
		f.ev = append(f.ev[:0], f.ev[f.head:]...)
		f.head = 0
	}
	return e
}
