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
