package sim

// Which LAN peer holds a chunk a device lacks is asked for every peer of
// a site at every transfer's end (tryFetch, serveWaiting), and devices of
// a site hold scattered chunks (the seed grants each a different window),
// so comparing bitsets cost a third of the run. For sites of up to
// pairSiteMax members the simulator counts instead, per ordered pair,
// the chunks one holds and the other lacks, and updates the counts at
// each chunk gained: O(site size) per chunk, O(1) per question.
const pairSiteMax = 64

// pairCounts holds, for each small site of k members, a k×k matrix:
// count[base[si] + i*k + j] = chunks member j holds and member i lacks.
type pairCounts struct {
	base  []int32 // per site: start of its matrix, -1 for a large site
	count []int32
}

// newPairCounts sizes the matrices; none for the central strategy, which
// never asks.
func newPairCounts(sites [][]int32, central bool) pairCounts {
	pc := pairCounts{base: make([]int32, len(sites))}
	n := 0
	for si, members := range sites {
		k := len(members)
		if k > pairSiteMax || central {
			pc.base[si] = -1
			continue
		}
		pc.base[si] = int32(n)
		n += k * k
	}
	pc.count = make([]int32, n)
	return pc
}

// pairsGain updates the counts of d's site for d gaining chunk c (no
// other member's bits change).
func (s *state) pairsGain(d, c int32) {
	si := s.dev[d].site
	b := s.pairs.base[si]
	if b < 0 {
		return
	}
	members := s.sites[si]
	k, i := len(members), int(s.dev[d].sitePos)
	m := s.pairs.count[b : int(b)+k*k]
	lacks := m[i*k : (i+1)*k] // what each member holds and d lacks
	w, bit := int(c>>6), uint64(1)<<(c&63)
	for j, p := range members {
		switch {
		case j == i:
		case s.have[int(p)*s.words+w]&bit != 0:
			lacks[j]--
		default:
			m[j*k+i]++ // one more that d holds and p lacks
		}
	}
}
