package policy

import (
	"testing"
	"time"
)

func TestSiteGrants(t *testing.T) {
	g := NewSiteGrants[string, string, string](30 * time.Second)
	now := time.Unix(1000, 0)
	steps := []struct {
		site, block, peer string
		dt                time.Duration
		want              bool
	}{
		{"A", "x", "a1", 0, true},
		{"A", "x", "a1", 0, true},  // the same peer again
		{"A", "x", "a2", 0, false}, // its neighbour fetches over the LAN
		{"B", "x", "b1", 0, true},  // another site
		{"A", "y", "a2", 0, true},  // another block, another peer of A
		{"A", "x", "a2", 31 * time.Second, true},
		{"A", "x", "a1", 0, false},
	}
	for i, s := range steps {
		now = now.Add(s.dt)
		if got := g.Allow(s.site, s.block, s.peer, now); got != s.want {
			t.Fatalf("step %d: %s of %s asks %s: %v, want %v", i, s.peer, s.site, s.block, got, s.want)
		}
	}
}

func TestSiteGrantsMemoryIsBounded(t *testing.T) {
	g := NewSiteGrants[int, int, int](time.Second)
	now := time.Unix(0, 0)
	peak := 0
	for i := range 200000 {
		now = now.Add(time.Millisecond) // 1000 live grants at any time
		g.Allow(i%7, i, i, now)
		peak = max(peak, g.Len())
	}
	if peak > 2*4096+2000 {
		t.Fatalf("%d grants held for about 1000 live ones", peak)
	}
}

func TestSiteGrantsLastWhileTheirPeerIsServed(t *testing.T) {
	g := NewSiteGrants[string, string, string](30 * time.Second)
	t0 := time.Unix(1000, 0)
	if !g.Allow("A", "x", "a1", t0) {
		t.Fatal("first grant refused")
	}
	// a1 is sent a block every 20 s: slower than the window, but served.
	for k := 1; k <= 5; k++ {
		now := t0.Add(time.Duration(k) * 20 * time.Second)
		g.Served("a1", now)
		if g.Allow("A", "x", "a2", now.Add(time.Second)) {
			t.Fatalf("at %v the grant to a1, still being served, went to a2", now.Sub(t0))
		}
	}
	// a1 stops being served: a window later its grant lapses.
	later := t0.Add(100*time.Second + 31*time.Second)
	if !g.Allow("A", "x", "a2", later) {
		t.Fatal("a grant outlived its peer's last block by more than the window")
	}
}
