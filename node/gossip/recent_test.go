package gossip

import (
	"testing"
	"time"
)

func TestRecentSetForgetsAfterWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newRecentSet(time.Minute)
	r.now = func() time.Time { return now }
	a, b := [32]byte{1}, [32]byte{2}
	if r.seen(a) {
		t.Fatal("empty set has a")
	}
	r.add(a)
	now = now.Add(59 * time.Second)
	if !r.seen(a) {
		t.Fatal("a forgotten inside the window")
	}
	now = now.Add(time.Second)
	if r.seen(a) {
		t.Fatal("a remembered past the window")
	}
	r.add(b) // sweeps a
	if _, ok := r.when[a]; ok || len(r.when) != 1 {
		t.Fatalf("sweep left %d entries", len(r.when))
	}
}
