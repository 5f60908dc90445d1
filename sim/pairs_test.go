package sim

import (
	"math/rand/v2"
	"testing"
)

// TestPairCountsMatchBitsets checks the per-pair counts against comparing
// the bitsets, for small sites (counted) and a large one (compared).
func TestPairCountsMatchBitsets(t *testing.T) {
	for _, size := range [][2]int{{5, 30}, {pairSiteMax + 1, pairSiteMax + 1}} {
		sc := small(t)
		sc.Sites.SizeMin, sc.Sites.SizeMax = size[0], size[1]
		s, err := newState(sc, StrategyMesh, 1)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(2, 3))
		for range 20 * s.n {
			d, c := int32(rng.IntN(s.n)), int32(rng.IntN(s.nChunks))
			if !s.has(d, c) {
				s.setHave(d, c)
			}
		}
		for _, members := range s.sites {
			for _, d := range members {
				for _, p := range members {
					want := false
					for w, x := range s.wordsOf(p) {
						want = want || x&^s.wordsOf(d)[w] != 0
					}
					if got := s.lacksFrom(d, p); got != want {
						t.Fatalf("sites of %d: lacksFrom(%d, %d) = %v, bitsets say %v", len(members), d, p, got, want)
					}
				}
			}
		}
	}
}
