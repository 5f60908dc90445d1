package sim

import (
	"math/rand/v2"
	"testing"
)

// TestOffersMatchBitsets checks offers against comparing the bitsets, for
// small sites (offer bits) and a large one (compared), with malicious
// peers.
func TestOffersMatchBitsets(t *testing.T) {
	for _, size := range []int{5, offerSiteMax, offerSiteMax + 1} {
		sc := small(t, "malicious.share=0.05")
		sc.Sites.SizeMin, sc.Sites.SizeMax = size, size+25
		s, err := newState(sc, StrategyMesh, 1)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(2, 3))
		for round := range 3 {
			for range 5 * s.n {
				d, c := int32(rng.IntN(s.n)), int32(rng.IntN(s.nChunks))
				if !s.has(d, c) {
					s.setHave(d, c)
				}
			}
			for _, members := range s.sites {
				for _, d := range members {
					for _, p := range members {
						want := s.malicious(p)
						for w, x := range s.wordsOf(p) {
							want = want || x&^s.wordsOf(d)[w] != 0
						}
						if got := s.offers(d, p); got != want {
							t.Fatalf("sites of %d, round %d: offers(%d, %d) = %v, bitsets say %v", len(members), round, d, p, got, want)
						}
					}
				}
			}
		}
	}
}
