package sim

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// TestQueueOrdersLikeASort drives the event queue (groups' heap, other
// events, FIFOs) with random sets, unsets, pushes and pops, with many
// equal times, and checks every event taken against the smallest
// (t, insertion order) of a plain list of what is pending.
func TestQueueOrdersLikeASort(t *testing.T) {
	const groups = 50
	rng := rand.New(rand.NewPCG(1, 2))
	s := &state{q: newEventQueue(groups)}
	type key struct {
		kind uint8
		a    int32
	}
	pending := map[key]event{} // a group's entry, or an event of another kind
	now, popped := 0.0, 0
	next := int32(0) // other events' a, unique
	for range 200_000 {
		// Times on a coarse grid so that ties are common.
		at := now + float64(rng.IntN(4))*0.5
		switch op := rng.IntN(10); {
		case op < 4:
			gi := int32(rng.IntN(groups))
			s.q.set(gi, at)
			pending[key{evGroup, gi}] = event{t: at, seq: s.q.seq, kind: evGroup, a: gi}
		case op < 5:
			gi := int32(rng.IntN(groups))
			s.q.unset(gi)
			delete(pending, key{evGroup, gi})
		case op < 6:
			next++
			s.q.push(event{t: at, kind: evChurn, a: next})
			pending[key{evChurn, next}] = event{t: at, seq: s.q.seq, kind: evChurn, a: next}
		case op < 7:
			// FIFO events come a fixed delay after now.
			next++
			s.q.seq++
			e := event{t: now + 1, seq: s.q.seq, kind: evRetry, a: next}
			s.stalls.push(e)
			pending[key{evRetry, next}] = e
		default:
			e, ok := s.next(math.Inf(1), math.Inf(1))
			if ok != (len(pending) > 0) {
				t.Fatalf("next: ok %v with %d pending", ok, len(pending))
			}
			if !ok {
				continue
			}
			var want event
			for _, p := range pending {
				if want.seq == 0 || p.before(&want) {
					want = p
				}
			}
			if e != want {
				t.Fatalf("took %+v, want %+v", e, want)
			}
			delete(pending, key{e.kind, e.a})
			now = e.t
			popped++
		}
	}
	if popped < 10_000 {
		t.Fatalf("only %d events taken", popped)
	}
}

// TestGroupEntrySize guards the heap's layout: a node's four children in
// one cache line.
func TestGroupEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(groupEntry{}); n != 16 {
		t.Fatalf("groupEntry is %d bytes, want 16", n)
	}
}
