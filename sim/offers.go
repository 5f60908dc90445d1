package sim

import (
	"math"
	"math/bits"
)

// Which LAN peers hold a chunk a device lacks is asked at nearly every
// transfer's end (tryFetch, serveWaiting), a dozen peers per event, and
// comparing bitsets each time was a third of the run. For sites of up to
// offerSiteMax members the simulator keeps the answer instead: per ordered
// pair of members, how many chunks one holds and the other lacks, updated
// at every chunk gained (O(site size)), and per device the mask of
// members for which that count is positive (or which are malicious, as
// those offer any block). Larger sites compare bitsets.
const offerSiteMax = 64

// lanOffers is the bookkeeping of offers, nil slices for the central
// strategy (which never asks).
type lanOffers struct {
	offer   []uint64 // per device: bit j = member j of its site has something for it
	holders []uint64 // per site × chunk: bit j = member j holds the chunk
	online  []uint64 // per site: bit j = member j is honest and counted online
	base    []int32  // per site: start of its k×k counts, -1 for a large site
	// count[base + ...]: chunks member j holds and member i lacks, at
	// tile (i/4, j/8) of the site's k/4 × k/8 tiles, row i%4, column j%8.
	count []int16
}

// A site's counts are stored in tiles of 4 rows × 8 columns, 64 bytes:
// a chunk gained by member i updates row i (the members that hold it)
// and column i (those that lack it). Stored by rows, the column touched a
// cache line per member (a site has up to 64); in tiles, a row touches
// k/8 lines and a column k/4.
const (
	tileRows = 4
	tileCols = 8
	tileSize = tileRows * tileCols
)

// pairCounts is how many counts a site of k members stores, padded to
// whole tiles.
func pairCounts(k int) int {
	return (k + tileRows - 1) / tileRows * ((k + tileCols - 1) / tileCols) * tileSize
}

// smallSite tells whether site si keeps counts.
func (s *state) smallSite(si int32) bool { return s.lan.base[si] >= 0 }

func (s *state) initOffers() {
	if s.strategy == StrategyCentral {
		return
	}
	o := &s.lan
	o.base = make([]int32, len(s.sites))
	n := 0
	for si, members := range s.sites {
		k := len(members)
		if k > offerSiteMax || s.nChunks > math.MaxInt16 {
			o.base[si] = -1
			continue
		}
		o.base[si] = int32(n)
		n += pairCounts(k)
	}
	o.count = make([]int16, n)
	o.offer = make([]uint64, len(s.dev))
	o.holders = make([]uint64, len(s.sites)*s.nChunks)
	o.online = make([]uint64, len(s.sites))
	for si, members := range s.sites {
		if !s.smallSite(int32(si)) {
			continue
		}
		var mal uint64
		for j, p := range members {
			if s.malicious(p) {
				mal |= 1 << j
			}
		}
		for _, p := range members {
			o.offer[p] = mal
		}
		o.online[si] = (1<<len(members) - 1) &^ mal
	}
}

// gainOffers updates the counts of d's site for d gaining chunk c.
func (s *state) gainOffers(d, c int32) {
	o := &s.lan
	si := s.dev[d].site
	if o.offer == nil || !s.smallSite(si) {
		return
	}
	members := s.sites[si]
	k, i := len(members), int(s.dev[d].sitePos)
	m := o.count[o.base[si] : int(o.base[si])+pairCounts(k)]
	h := &o.holders[int(si)*s.nChunks+int(c)]
	had := *h // members that hold c: one chunk fewer they have for d
	*h |= 1 << i
	// The counts of pairs (i, j) are at row+(j's offset in a row of
	// tiles), those of (j, i) at col+(j's offset in a column of tiles).
	tileRow := (k + tileCols - 1) / tileCols * tileSize
	row := i/tileRows*tileRow + i%tileRows*tileCols
	col := i/tileCols*tileSize + i%tileCols
	for x := had; x != 0; x &= x - 1 {
		j := bits.TrailingZeros64(x)
		p := &m[row+j/tileCols*tileSize+j%tileCols]
		if *p--; *p == 0 {
			o.offer[d] &^= 1 << j
		}
	}
	// Members that lack c: one chunk more d has for them.
	for x := ^*h & (1<<k - 1); x != 0; x &= x - 1 {
		j := bits.TrailingZeros64(x)
		p := &m[col+j/tileRows*tileRow+j%tileRows*tileCols]
		if *p++; *p == 1 {
			o.offer[members[j]] |= 1 << i
		}
	}
}

// offers tells whether peer p of d's site has something for d: a chunk d
// lacks, or anything if p is malicious (its blocks fail their hash).
func (s *state) offers(d, p int32) bool {
	if s.smallSite(s.dev[d].site) {
		return s.lan.offer[d]&(1<<s.dev[p].sitePos) != 0
	}
	return s.malicious(p) || s.lacksFrom(d, p)
}

// lanSource is the least busy peer of d's site that may serve d now and
// has something for it, -1 if none; ties go to the first after d in the
// site list, so that neighbours spread their requests over different
// peers.
func (s *state) lanSource(d int32) int32 {
	members := s.sites[s.dev[d].site]
	pos := int(s.dev[d].sitePos)
	best, bestLoad := int32(-1), int32(math.MaxInt32)
	// consider reports whether nobody can beat best.
	consider := func(j int) bool {
		p := members[j]
		if s.dev[p].upUsed >= bestLoad || !s.canServe(p, d) || !s.offers(d, p) {
			return false
		}
		best, bestLoad = p, s.dev[p].upUsed
		return bestLoad == 0
	}
	if !s.smallSite(s.dev[d].site) {
		for k := range members {
			j := pos + 1 + k
			if j >= len(members) {
				j -= len(members)
			}
			if consider(j) {
				break
			}
		}
		return best
	}
	// Only members in d's mask qualify: after d, then before it.
	m := s.lan.offer[d]
	after := m >> (pos + 1) << (pos + 1)
	for _, part := range [2]uint64{after, m &^ after} {
		for part != 0 {
			j := bits.TrailingZeros64(part)
			part &= part - 1
			if consider(j) {
				return best
			}
		}
	}
	return best
}
