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
type eventQueue struct {
	h   []event
	seq uint64
}

func (q *eventQueue) less(i, j int) bool {
	a, b := &q.h[i], &q.h[j]
	if a.t != b.t {
		return a.t < b.t
	}
	return a.seq < b.seq
}

func (q *eventQueue) push(e event) {
	q.seq++
	e.seq = q.seq
	q.h = append(q.h, e)
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !q.less(i, p) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *eventQueue) pop() event {
	top := q.h[0]
	n := len(q.h) - 1
	q.h[0] = q.h[n]
	q.h = q.h[:n]
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < n; k++ {
			if q.less(k, m) {
				m = k
			}
		}
		if !q.less(m, i) {
			break
		}
		q.h[i], q.h[m] = q.h[m], q.h[i]
		i = m
	}
	return top
}

func (q *eventQueue) len() int { return len(q.h) }
