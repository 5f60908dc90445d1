package sim

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// progressiveFilling is the textbook algorithm, written independently of
// the simulator: raise every unfrozen flow's rate together until a
// resource saturates or a flow reaches its cap, freeze those, repeat.
// uses[f] lists the resources flow f crosses.
func progressiveFilling(capacity []float64, caps []float64, uses [][]int) []float64 {
	n := len(caps)
	rate := make([]float64, n)
	frozen := make([]bool, n)
	left := append([]float64(nil), capacity...)
	for {
		active := 0
		users := make([]int, len(capacity))
		for f := range n {
			if !frozen[f] {
				active++
				for _, r := range uses[f] {
					users[r]++
				}
			}
		}
		if active == 0 {
			return rate
		}
		step := math.Inf(1)
		for r, u := range users {
			if u > 0 {
				step = min(step, left[r]/float64(u))
			}
		}
		for f := range n {
			if !frozen[f] {
				step = min(step, caps[f]-rate[f])
			}
		}
		for f := range n {
			if frozen[f] {
				continue
			}
			rate[f] += step
			for _, r := range uses[f] {
				left[r] -= step
			}
		}
		for f := range n {
			if frozen[f] {
				continue
			}
			if caps[f]-rate[f] <= 1e-9*caps[f] {
				frozen[f] = true
				continue
			}
			for _, r := range uses[f] {
				if left[r] <= 1e-9*capacity[r] {
					frozen[f] = true
				}
			}
		}
	}
}

// TestSeedRatesAreMaxMinFair drives the seed group through random flow
// arrivals and departures and checks every rate against progressive
// filling over the seed uplink and the site downlinks.
func TestSeedRatesAreMaxMinFair(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 40 {
		sc := DefaultScenario()
		sc.Fleet.Devices = 200
		sc.Sites.Size = 10
		sc.Sites.Downlink = Rate(1e6 * (1 + rng.Float64()*20))
		sc.Seed.Uplink = Rate(1e6 * (1 + rng.Float64()*100))
		sc.Devices.Downlink = Rate(1e5 * (1 + rng.Float64()*30))
		s, err := newState(sc, StrategyMesh, uint64(trial))
		if err != nil {
			t.Fatal(err)
		}
		var live []int32
		now := 0.0
		for step := range 300 {
			now += rng.Float64() * 0.01
			if len(live) > 0 && rng.IntN(3) == 0 {
				k := rng.IntN(len(live))
				s.seed.remove(live[k], now)
				live = append(live[:k], live[k+1:]...)
			} else {
				d := int32(rng.IntN(s.n))
				id := s.newFlow(flow{src: s.seedIdx, dst: d, size: 1e6, left: 1e6, site: s.dev[d].site})
				s.flows[id].active = true
				s.seed.add(id, now)
				live = append(live, id)
			}
			if len(live) == 0 {
				continue
			}
			nSites := len(s.sites)
			capacity := make([]float64, nSites+1)
			for i := range nSites {
				capacity[i] = float64(sc.Sites.Downlink)
			}
			capacity[nSites] = float64(sc.Seed.Uplink)
			caps := make([]float64, len(live))
			uses := make([][]int, len(live))
			for k, id := range live {
				caps[k] = s.seed.capRate
				uses[k] = []int{int(s.flows[id].site), nSites}
			}
			want := progressiveFilling(capacity, caps, uses)
			for k, id := range live {
				if got := s.seed.rate(id); math.Abs(got-want[k]) > 1e-6*want[k] {
					t.Fatalf("trial %d step %d: flow into site %d at %.1f B/s, max-min fair is %.1f", trial, step, s.flows[id].site, got, want[k])
				}
			}
		}
	}
}

func TestDeviceRatesAreMaxMinFair(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	sc := DefaultScenario()
	sc.Fleet.Devices = 20
	s, err := newState(sc, StrategyMesh, 1)
	if err != nil {
		t.Fatal(err)
	}
	for trial := range 200 {
		var ids []int32
		n := 1 + rng.IntN(8)
		caps := make([]float64, n)
		uses := make([][]int, n)
		for k := range n {
			caps[k] = 1e5 * (1 + rng.Float64()*50)
			uses[k] = []int{0}
			ids = append(ids, s.newFlow(flow{cap: caps[k]}))
		}
		up := 1e6 * (1 + rng.Float64()*5)
		s.fillDevice(slices.Clone(ids), up)
		want := progressiveFilling([]float64{up}, caps, uses)
		for k, id := range ids {
			if got := s.flows[id].rate; math.Abs(got-want[k]) > 1e-6*want[k] {
				t.Fatalf("trial %d: flow %d at %.1f, max-min fair is %.1f", trial, k, got, want[k])
			}
		}
		for _, id := range ids {
			s.freeFlow(id)
		}
	}
}

// TestSeedClocksDeliverWhatRatesSay checks the virtual clocks: a flow's
// remaining bytes fall by exactly rate × time while nothing changes.
func TestSeedClocksDeliverWhatRatesSay(t *testing.T) {
	sc := DefaultScenario()
	sc.Fleet.Devices = 100
	sc.Seed.Uplink = 3e6
	s, _ := newState(sc, StrategyMesh, 1)
	var ids []int32
	for d := int32(0); d < 60; d += 3 {
		id := s.newFlow(flow{src: s.seedIdx, dst: d, size: 5e6, left: 5e6, site: s.dev[d].site})
		s.flows[id].active = true
		s.seed.add(id, 1.0)
		ids = append(ids, id)
	}
	for _, id := range ids {
		r := s.seed.rate(id)
		got := s.seed.left(id, 1.5)
		if want := 5e6 - r*0.5; math.Abs(got-want) > 1e-6*5e6 {
			t.Fatalf("flow %d: %.1f bytes left after 0.5 s at %.1f B/s, want %.1f", id, got, r, want)
		}
	}
}

// Test accessors of the seed group.

// left is what flow id still has to receive.
func (g *seedGroup) left(id int32, now float64) float64 {
	f := &g.s.flows[id]
	g.advance(now)
	return f.tag - g.clock(f.site, now)
}
