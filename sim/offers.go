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
	base    []int32  // per site: start of its k×k counts (words), -1 for a large site
	// count holds, 16 bits a count and four to a word, the chunks member
	// j holds and member i lacks (below 2^15: sites keep counts only when
	// the release has fewer chunks).
	count []uint64
}

// A site's counts are stored in tiles of 4 rows × 8 columns, 64 bytes
// (8 words: row r of a tile is words 2r and 2r+1): a chunk gained by
// member i updates row i (the members that hold it) and column i (those
// that lack it). Stored by rows, the column touched a cache line per
// member (a site has up to 64); in tiles, a row touches k/8 lines and a
// column k/4. Row i's counts are updated four at a time, a word each.
const (
	tileRows  = 4
	tileCols  = 8
	tileWords = tileRows * tileCols / 4
)

// pairWords is how many words a site of k members stores its counts in,
// padded to whole tiles.
func pairWords(k int) int {
	return (k + tileRows - 1) / tileRows * ((k + tileCols - 1) / tileCols) * tileWords
}

// lanes[x] has a 1 in each 16-bit lane l with bit l of x set.
var lanes = func() (t [16]uint64) {
	for x := range t {
		for l := range 4 {
			if x&(1<<l) != 0 {
				t[x] |= 1 << (16 * l)
			}
		}
	}
	return t
}()

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
		n += pairWords(k)
	}
	o.count = make([]uint64, n)
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
	m := o.count[o.base[si] : int(o.base[si])+pairWords(k)]
	h := &o.holders[int(si)*s.nChunks+int(c)]
	had := *h // members that hold c: one chunk fewer they have for d
	*h |= 1 << i
	tileRow := (k + tileCols - 1) / tileCols * tileWords // words per row of tiles
	// Row i, members 4g..4g+3 at a time (g: a group of four): the word
	// is row + g/2 tiles + g%2.
	row := i/tileRows*tileRow + i%tileRows*2
	for x := had; x != 0; {
		g := bits.TrailingZeros64(x) / 4
		nib := had >> (4 * g) & 15
		x &^= 15 << (4 * g)
		p := &m[row+g/2*tileWords+g%2]
		*p -= lanes[nib]
		// Lanes now 0 (counts are below 2^15, so adding 0x7fff to each
		// carries into no other lane): those members have nothing left
		// for d.
		z := ^(*p + 0x7fff7fff7fff7fff) & 0x8000800080008000
		zb := z>>15&1 | z>>30&2 | z>>45&4 | z>>60&8
		o.offer[d] &^= (zb & nib) << (4 * g)
	}
	// Members that lack c: one chunk more d has for them. Column i is
	// lane i%4 of word col in each member's row. Only a count that
	// becomes 1 sets an offer bit: setting it every time costs a store
	// per member (measured: 3 s of the national run).
	col := i/tileCols*tileWords + i%tileCols/4
	shift := 16 * (i % 4)
	for x := ^*h & (1<<k - 1); x != 0; x &= x - 1 {
		j := bits.TrailingZeros64(x)
		p := &m[col+j/tileRows*tileRow+j%tileRows*2]
		if *p += 1 << shift; *p>>shift&0xffff == 1 {
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
