package sim

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"time"

	"github.com/meshota/meshota/node/policy"
)

// state is one simulation run.
type state struct {
	sc       *Scenario
	strategy string
	rng      *rand.Rand
	q        eventQueue
	now      float64
	events   uint64

	n, m     int   // honest devices, malicious peers
	seedIdx  int32 // group index of the seed (n+m)
	nChunks  int
	words    int
	chunkLen []float64 // bytes per chunk
	reused   []bool    // chunk unchanged since the previous release

	// Capacities in bytes per second.
	devUp, devDown, siteDown Rate
	wanCap, lanCap           float64 // per-flow loss limits (Mathis)
	seedRTT, lanRTT          float64
	// wanDelay is the one-way latency between the seed and a device
	// (seedRTT/2): every message between them takes it.
	wanDelay float64

	// Devices (honest first, then malicious): the fields every event
	// touches in one struct (one cache line), the rest in arrays.
	dev       []device
	have      []uint64 // words bits per device
	announce  []float64
	granted   []uint64 // chunks the seed granted d (bits, like have)
	banned    [][]int32
	installAt []float64 // -1 until installed
	eligible  []bool
	bucket    []uint32

	// Sites.
	sites [][]int32 // members, honest and malicious
	// siteCount is per site × chunk the number of online honest holders,
	// kept for sites too large for lanOffers only: a small site's are its
	// lan.holders & lan.online.
	siteCount []int32
	// siteHas is, per site, words bits: chunk c held by an online honest
	// member, so that chunk searches skip what the LAN holds a word at a
	// time.
	siteHas  []uint64
	siteWait [][]int32
	// waitMask is, for small sites (lan.base ≥ 0), bit sitePos set for
	// each member waiting: serveWaiting tells stale entries of siteWait
	// from the site's one word instead of reading each device.
	waitMask    []uint64
	lan         lanOffers
	partitioned []bool

	// Seed (seedserve.go): it sends to Slots devices at once, the others
	// wait in seedQueue.
	grants     *policy.SiteGrants[int32, int32, int32]
	peers      []seedPeer
	seedQueue  []seedTurn
	seedQHead  int
	seedActive int
	seedCut    []bool // the seed's view of the partitions
	// Messages in flight between the seed and the sites (messages.go):
	// those arriving in this window, and those sent in it (the outboxes,
	// handed over at the barrier; a want message's chunk ids are in
	// wantOut, then the seed's wantIn).
	seedIn, siteIn   fifo[message]
	outSeed, outSite []message
	wantOut, wantIn  []int32

	// flows are, in a shard, the LAN flows, one slot per receiver
	// (shared by the shards: each writes its own devices'); in the seed's
	// process, the seed's flows, a pool with its free slots.
	flows     []flow
	freeFlows []int32
	// up holds the devices' groups of active uploads, upStride entries
	// each: the count, then the flow ids (uploads).
	up       []int32
	upStride int
	seed     *seedGroup
	// Events a fixed delay after now, each in time order: stall checks
	// and flow starts after a LAN round trip.
	stalls, lanStarts fifo[event]

	stageBP uint32 // the current rollout stage, in basis points

	// The logical process (windows.go): the seed's, or a shard's, which
	// simulates the sites from siteLo to siteHi.
	isSeed         bool
	siteLo, siteHi int32
	cuts           [][]int32    // per partition, the sites it cuts
	siteRng        []*rand.Rand // per site, for churn: a site's draws do not depend on the others'
	done           []int32      // scratch: flows complete at an event

	// Totals of the process's sites (whole bytes: exact in any order).
	bytesSeed, bytesPeers, bytesWasted float64
	installed                          int
	// tally is the process's totals at each sample time (nil for the seed).
	tally       []Sample
	samples     int
	nextSample  float64
	sampleEvery float64
}

const seedBit = -1

func (s *state) wordsOf(i int32) []uint64 {
	return s.have[int(i)*s.words : (int(i)+1)*s.words]
}

func (s *state) has(i int32, c int32) bool {
	return s.have[int(i)*s.words+int(c>>6)]&(1<<(c&63)) != 0
}

func (s *state) malicious(i int32) bool { return int(i) >= s.n && i < s.seedIdx }

// mathis is the throughput one TCP flow reaches on a lossy path
// (Mathis et al. 1997: MSS/RTT × 1.22/√p); no limit without loss.
func mathis(rtt, loss float64) float64 {
	if loss <= 0 || rtt <= 0 {
		return math.Inf(1)
	}
	return 1460 * 1.22 / (rtt * math.Sqrt(loss))
}

func newState(sc *Scenario, strategy string, seed uint64) (*state, error) {
	s := &state{sc: sc, strategy: strategy, rng: rand.New(rand.NewPCG(seed, 0x6d6573686f7461))}
	s.n = sc.Fleet.Devices
	s.m = int(math.Round(sc.Malicious.Share * float64(s.n)))
	total := s.n + s.m
	if total+1 > 1<<groupBits {
		return nil, fmt.Errorf("%w: %d devices and malicious peers: more than the event queue can name (%d)", ErrInvalid, total, 1<<groupBits-1)
	}
	s.seedIdx = int32(total)
	F, C := int64(sc.Release.Size), int64(sc.Release.Chunk)
	s.nChunks = int((F + C - 1) / C)
	s.words = (s.nChunks + 63) / 64
	s.chunkLen = make([]float64, s.nChunks)
	s.reused = make([]bool, s.nChunks)
	for c := range s.chunkLen {
		s.chunkLen[c] = float64(min(C, F-int64(c)*C))
		s.reused[c] = s.rng.Float64() < sc.Release.Reused
	}
	s.devUp, s.devDown, s.siteDown = sc.Devices.Uplink, sc.Devices.Downlink, sc.Sites.Downlink
	s.seedRTT = 2 * (sc.Seed.Latency.Seconds() + sc.Sites.Latency.Seconds() + sc.Sites.LANLatency.Seconds())
	s.lanRTT = 2 * sc.Sites.LANLatency.Seconds()
	s.wanDelay = max(s.seedRTT/2, minWindow)
	s.wanCap = mathis(s.seedRTT, sc.Sites.Loss)
	s.lanCap = mathis(s.lanRTT, sc.Sites.LANLoss)
	if sc.Seed.Link > 0 {
		s.wanCap = min(s.wanCap, float64(sc.Seed.Link))
	}

	// Sites: draw sizes until the fleet is placed.
	for placed := 0; placed < s.n; {
		var size int
		switch sc.Sites.SizeDist {
		case "uniform":
			size = sc.Sites.SizeMin + s.rng.IntN(sc.Sites.SizeMax-sc.Sites.SizeMin+1)
		case "geometric":
			p := 1 / float64(max(sc.Sites.Size, 1))
			size = 1 + int(math.Floor(math.Log(1-s.rng.Float64())/math.Log(1-p+1e-12)))
		default:
			size = sc.Sites.Size
		}
		size = min(max(size, 1), s.n-placed)
		members := make([]int32, size)
		for k := range members {
			members[k] = int32(placed + k)
		}
		s.sites = append(s.sites, members)
		placed += size
	}
	for i := s.n; i < total; i++ {
		si := int32(s.rng.IntN(len(s.sites)))
		s.sites[si] = append(s.sites[si], int32(i))
	}
	s.dev = make([]device, total)
	for si, members := range s.sites {
		for k, d := range members {
			s.dev[d].site = int32(si)
			s.dev[d].sitePos = int32(k)
		}
	}
	nSites := len(s.sites)
	if int64(nSites)*int64(s.nChunks) > 2_000_000_000 {
		return nil, fmt.Errorf("%w: %d sites × %d chunks is too large to simulate; use a larger release.chunk", ErrInvalid, nSites, s.nChunks)
	}

	s.have = make([]uint64, total*s.words)
	s.announce = make([]float64, total)
	s.granted = make([]uint64, total*s.words)
	s.banned = make([][]int32, total)
	s.installAt = make([]float64, total)
	s.eligible = make([]bool, total)
	s.bucket = make([]uint32, total)
	// A device uploads at most UploadSlots flows at once (canServe): its
	// group's count and ids live in one shared array, next to its
	// neighbours', not in a small allocation of their own.
	s.upStride = 1 + sc.Devices.UploadSlots
	s.up = make([]int32, total*s.upStride)
	s.flows = make([]flow, total) // a LAN flow's slot is its receiver's
	s.q = newEventQueue(total + 1)
	s.siteCount = make([]int32, nSites*s.nChunks)
	s.siteHas = make([]uint64, nSites*s.words)
	s.siteWait = make([][]int32, nSites)
	s.waitMask = make([]uint64, nSites)
	s.partitioned = make([]bool, nSites)
	s.seedCut = make([]bool, nSites)
	s.peers = make([]seedPeer, total)
	s.seed = newSeedGroup(s, nSites)
	s.initOffers()
	if sc.Seed.OncePerSite > 0 {
		s.grants = policy.NewSiteGrants[int32, int32, int32](time.Duration(sc.Seed.OncePerSite), int64(sc.Release.Chunk))
	}

	prevEnd := int(math.Round(sc.Release.PreviousShare * float64(s.n)))
	for i := range total {
		d := int32(i)
		s.dev[i].online, s.dev[i].idle, s.dev[i].downFlow, s.installAt[i] = true, true, -1, -1
		s.peers[i].flow = -1
		if s.malicious(d) {
			continue
		}
		s.bucket[i] = policy.RolloutBucket(sc.Channel, DeviceID(i))
		s.dev[i].missing = int32(s.nChunks)
		// Which devices hold the previous release: a random share.
		if s.rng.IntN(s.n) < prevEnd {
			for c := range s.nChunks {
				if s.reused[c] {
					s.setHave(d, int32(c))
				}
			}
		}
	}
	return s, nil
}

// wallClock is the simulated time as the time.Time policy.SiteGrants takes.
func (s *state) wallClock() time.Time {
	return time.Unix(0, 0).Add(time.Duration(s.now * float64(time.Second)))
}

// basisPoints converts a rollout share (0..1) as manifests carry it.
func basisPoints(share float64) uint32 {
	return uint32(math.Round(share * policy.MaxBasisPoints))
}

// DeviceID names simulated device i; rollout buckets are computed from it
// exactly as the agent computes them from its real ID.
func DeviceID(i int) string { return fmt.Sprintf("sim-device-%08d", i) }

func (s *state) setHave(d, c int32) {
	s.have[int(d)*s.words+int(c>>6)] |= 1 << (c & 63)
	s.gainOffers(d, c)
	s.dev[d].missing--
	if s.dev[d].online {
		si := int(s.dev[d].site)
		if !s.lanSmall(int32(si)) {
			s.siteCount[si*s.nChunks+int(c)]++
		}
		s.siteHas[si*s.words+int(c>>6)] |= 1 << (c & 63)
	}
}

// lanSmall tells whether site si keeps lanOffers (its online holders
// are in lan.holders & lan.online, not siteCount).
func (s *state) lanSmall(si int32) bool { return s.lan.base != nil && s.smallSite(si) }

// lanHas tells whether an online honest device of site si holds chunk c.
func (s *state) lanHas(si, c int32) bool {
	return s.siteHas[int(si)*s.words+int(c>>6)]&(1<<(c&63)) != 0
}

// firstWanted is the first chunk, in index order (the order
// content.Assemble and the agent's prefetch fetch in), that device d lacks
// and source holds (all chunks when source is the seed or malicious);
// skipLAN skips chunks some online peer of d's site holds.
func (s *state) firstWanted(d, src int32, skipLAN bool, from int32) int32 {
	dw := s.wordsOf(d)
	var sw []uint64
	if src >= 0 && !s.malicious(src) {
		sw = s.wordsOf(src)
	}
	var lw []uint64
	if skipLAN {
		si := int(s.dev[d].site)
		lw = s.siteHas[si*s.words : (si+1)*s.words]
	}
	for w := int(from >> 6); w < s.words; w++ {
		x := ^dw[w]
		if sw != nil {
			x &= sw[w]
		}
		if lw != nil {
			x &^= lw[w]
		}
		if w == int(from>>6) {
			x &= ^uint64(0) << (from & 63)
		}
		if w == s.words-1 && s.nChunks%64 != 0 {
			x &= (1 << (s.nChunks % 64)) - 1
		}
		if x != 0 {
			return int32(w*64 + bits.TrailingZeros64(x))
		}
	}
	return -1
}

// lacksFrom tells whether honest peer p holds a chunk d lacks (for
// sites too large for offers' counts).
func (s *state) lacksFrom(d, p int32) bool {
	switch {
	case s.dev[p].missing < s.dev[d].missing:
		return true // p holds more chunks than d, so one d lacks
	case int(s.dev[p].missing) == s.nChunks:
		return false
	}
	dw := s.have[int(d)*s.words : (int(d)+1)*s.words]
	pw := s.have[int(p)*s.words : (int(p)+1)*s.words]
	for w, x := range pw {
		if x&^dw[w] != 0 {
			return true
		}
	}
	return false
}

func (s *state) isBanned(d, p int32) bool {
	for _, b := range s.banned[d] {
		if b == p {
			return true
		}
	}
	return false
}

// canServe tells whether peer p may upload to d now.
func (s *state) canServe(p, d int32) bool {
	return p != d && s.dev[p].online && s.dev[p].upUsed < int32(s.sc.Devices.UploadSlots) && !s.isBanned(d, p)
}

// tryFetch starts device d's next download if it can: from the least busy
// LAN peer that has a chunk it lacks, else from the seed, which applies
// policy.SiteGrants (a block goes to one device per site; its neighbours
// wait for it on the LAN). A device that finds nothing waits.
func (s *state) tryFetch(d int32) {
	if !s.dev[d].online || !s.dev[d].idle || !s.dev[d].announced || s.dev[d].missing == 0 || s.malicious(d) {
		return
	}
	if s.strategy == StrategyCentral {
		s.askSeed(d)
		return
	}
	best := s.lanSource(d)
	if best >= 0 {
		s.start(best, d, s.firstWanted(d, best, false, 0))
		return
	}
	s.askSeed(d)
}

// blockListChunk stands for the release's block list in the seed's grant
// rule: a device asks for it before any chunk.
const blockListChunk int32 = -1

// wantBatch is how many blocks a device's request names at once: bitswap
// keeps a window of wants in flight, and the seed's filter
// (policy.SiteGrants) judges every one of them when it arrives: the device
// is granted up to its share of the site's grants, its neighbours the rest.
const wantBatch = 64

// askSeed sends d's next wants to the seed: a window of wantBatch chunks
// it lacks and its LAN does not hold, from where its previous wants
// ended (each is sent once; a stall sends them all again). The seed
// judges them when they arrive (seedserve.go) and sends the granted ones
// back to back, or answers "don't have" (granted to neighbours, which d
// then waits for on its LAN). d downloads nothing else meanwhile: a
// device receives one transfer at a time.
func (s *state) askSeed(d int32) {
	if s.partitioned[s.dev[d].site] {
		s.wait(d)
		return
	}
	m := message{kind: msgWants, d: d}
	if s.strategy == StrategyCentral {
		for c := range s.nChunks {
			if !s.has(d, int32(c)) {
				m.size += s.chunkLen[c]
			}
		}
	} else {
		from := int32(0)
		if s.grants != nil {
			from = s.dev[d].wantEnd
		}
		off := len(s.wantOut)
		for c := s.firstWanted(d, seedBit, true, from); c >= 0 && len(s.wantOut)-off < wantBatch; c = s.firstWanted(d, seedBit, true, c+1) {
			s.wantOut = append(s.wantOut, c)
		}
		ids := s.wantOut[off:]
		if len(ids) == 0 {
			// Everything d lacks is on its LAN or was asked for (granted
			// to a neighbour): d waits. Like node/exchange, it asks
			// everyone again if no chunk arrives for policy.StallTimeout
			// (the neighbour may be gone).
			s.wait(d)
			if s.grants != nil {
				s.armStall(d)
			}
			return
		}
		if s.grants != nil {
			s.dev[d].wantEnd = ids[len(ids)-1] + 1
		}
		m.c, m.n = int32(off), int32(len(ids))
	}
	s.dev[d].ses++
	m.ses = s.dev[d].ses
	s.dev[d].atSeed = true
	s.busy(d)
	s.toSeed(m)
}

// endSession makes d, whose session with the seed ended, free to
// download again; messages of the session still in flight are ignored.
func (s *state) endSession(d int32) {
	s.dev[d].atSeed = false
	s.dev[d].idle = true
	s.dev[d].ses++
}

// inSession tells whether a message of session ses from the seed is for
// d's current session.
func (s *state) inSession(d int32, ses uint16) bool {
	return s.dev[d].atSeed && s.dev[d].ses == ses
}

// onChunk delivers a chunk from the seed to d.
func (s *state) onChunk(m message) {
	d := m.d
	if !s.inSession(d, m.ses) {
		return // d went offline or its site was cut: the chunk is lost
	}
	s.dev[d].lastEnd = s.now
	s.bytesSeed += m.size
	s.dev[d].bySeed += m.size
	if m.c >= 0 {
		s.gain(d, m.c)
	} else {
		for c := range s.nChunks {
			if !s.has(d, int32(c)) {
				s.gain(d, int32(c))
			}
		}
	}
	if m.last {
		s.endSession(d)
		s.tryFetch(d)
	}
	if m.c >= 0 {
		s.serveWaiting(s.dev[d].site, d)
	}
}

// onRefused ends d's session: the seed granted none of its wants. d
// looks on its LAN, or sends its next wants.
func (s *state) onRefused(m message) {
	if s.inSession(m.d, m.ses) {
		s.endSession(m.d)
		s.tryFetch(m.d)
	}
}

// onPartial gives d the whole chunks of a central transfer that ended
// early (whole chunks survive an interruption).
func (s *state) onPartial(m message) {
	d, got := m.d, m.size
	for c := 0; c < s.nChunks && got > 0; c++ {
		if !s.has(d, int32(c)) && got >= s.chunkLen[c] {
			got -= s.chunkLen[c]
			s.bytesSeed += s.chunkLen[c]
			s.dev[d].bySeed += s.chunkLen[c]
			s.gain(d, int32(c))
		}
	}
}

var stallTimeout = policy.StallTimeout.Seconds()

// armStall makes sure a stall check for d is queued.
func (s *state) armStall(d int32) {
	if !s.dev[d].retrying {
		s.dev[d].retrying = true
		// Always now + StallTimeout, so in time order: a FIFO, not the
		// heap (a stall check waits for most devices most of the time).
		s.q.seq++
		s.stalls.push(event{t: s.now + stallTimeout, kind: evRetry, a: d, seq: s.q.seq})
	}
}

// forgetWants makes d send all its wants again (after the grant window).
func (s *state) forgetWants(d int32) { s.dev[d].wantEnd = 0 }

func (s *state) wait(d int32) {
	if !s.dev[d].waiting {
		s.dev[d].waiting = true
		s.setWaitBit(d, true)
		s.siteWait[s.dev[d].site] = append(s.siteWait[s.dev[d].site], d)
	}
}

// busy marks d as downloading (or waiting for the seed).
func (s *state) busy(d int32) {
	s.dev[d].idle = false
	if s.dev[d].waiting {
		s.dev[d].waiting = false // lazily removed from the site's list
		s.setWaitBit(d, false)
	}
}

// start reserves both ends of a LAN transfer and starts the flow after
// the request's round trip (back-to-back requests are pipelined, as
// bitswap keeps several wants in flight, so they pay no round trip).
func (s *state) start(src, d int32, c int32) {
	s.dev[src].upUsed++
	s.busy(d)
	// A LAN flow's slot is its receiver's (one download at a time): no
	// pool, and ids do not depend on the order sites are simulated in.
	id := d
	s.flows[id] = flow{src: src, dst: d, chunk: c, size: s.chunkLen[c], left: s.chunkLen[c],
		cap: min(float64(s.devDown), s.lanCap), site: s.dev[d].site, gen: s.flows[id].gen + 1, live: true}
	s.dev[d].downFlow = id
	if s.dev[d].lastEnd == s.now {
		s.activate(id)
		return
	}
	s.q.seq++
	s.lanStarts.push(event{t: s.now + s.lanRTT, kind: evFlowStart, a: id, ver: s.flows[id].gen, seq: s.q.seq})
}

func (s *state) activate(id int32) {
	f := &s.flows[id]
	f.active = true
	s.advance(f.src, s.now)
	s.addUpload(f.src, id)
	s.reschedule(f.src)
}

// finish handles a completed LAN flow.
func (s *state) finish(id int32) {
	f := s.flows[id]
	s.endLANFlow(id)
	d, src := f.dst, f.src
	s.dev[d].idle = true
	s.dev[d].downFlow = -1
	s.dev[d].lastEnd = s.now
	s.dev[src].upUsed--
	if s.malicious(src) {
		s.bytesWasted += f.size
		s.banned[d] = append(s.banned[d], src) // the block failed its hash
	} else {
		s.bytesPeers += f.size
		s.dev[d].byPeers += f.size
		s.gain(d, f.chunk)
	}
	s.tryFetch(d)
	s.serveWaiting(s.dev[src].site, src)
	if !s.malicious(src) {
		s.serveWaiting(s.dev[d].site, d)
	}
}

func (s *state) gain(d, c int32) {
	s.setHave(d, c)
	if s.dev[d].missing == 0 {
		s.maybeInstall(d)
	}
}

func (s *state) maybeInstall(d int32) {
	if s.installAt[d] < 0 && s.dev[d].missing == 0 && policy.BucketInRollout(s.bucket[d], s.stageBP) && !s.malicious(d) {
		s.installAt[d] = s.now
		s.installed++
	}
}

// serveWaiting lets peer p, which has a free upload slot or a new chunk,
// serve the waiting devices of its site that lack something it holds.
func (s *state) serveWaiting(si, p int32) {
	slots := int32(s.sc.Devices.UploadSlots)
	if s.strategy == StrategyCentral || !s.dev[p].online || s.dev[p].upUsed >= slots {
		return
	}
	list := s.siteWait[si]
	keep := list[:0]
	// Only honest devices wait, and a site's honest members are
	// consecutive from its first: in a small site, w's bit is w - first.
	// offers(w, p) is then w's mask at p's bit.
	small, first := s.smallSite(si), s.sites[si][0]
	pbit := uint64(1) << s.dev[p].sitePos
	for k, w := range list {
		if small && s.waitMask[si]&(1<<(w-first)) == 0 || !small && !s.dev[w].waiting {
			continue // served or gone since it queued
		}
		if (small && s.lan.offer[w]&pbit != 0 || !small && s.offers(w, p)) && s.dev[w].idle && s.dev[w].online && !s.isBanned(w, p) {
			if c := s.firstWanted(w, p, false, 0); c >= 0 {
				s.start(p, w, c) // clears waiting[w]
				if s.dev[p].upUsed >= slots {
					keep = append(keep, list[k+1:]...)
					break
				}
				continue
			}
		}
		keep = append(keep, w)
	}
	s.siteWait[si] = keep
}

// setWaitBit keeps waitMask in step with d's waiting flag.
func (s *state) setWaitBit(d int32, on bool) {
	si := s.dev[d].site
	if s.lan.base == nil || !s.smallSite(si) {
		return
	}
	if on {
		s.waitMask[si] |= 1 << s.dev[d].sitePos
	} else {
		s.waitMask[si] &^= 1 << s.dev[d].sitePos
	}
}

// endLANFlow frees a LAN flow's slot (its receiver's).
func (s *state) endLANFlow(id int32) {
	s.flows[id].live = false
	s.flows[id].active = false
}

// abort cancels a LAN download (its receiver or its source went offline).
func (s *state) abort(id int32) {
	f := &s.flows[id]
	if f.active {
		s.advance(f.src, s.now)
		s.detach(id)
		s.reschedule(f.src)
	}
	d, src := f.dst, f.src
	s.endLANFlow(id)
	s.dev[d].idle = true
	s.dev[d].downFlow = -1
	s.dev[src].upUsed--
}

// detach takes an active flow out of its (device) source's group.
func (s *state) detach(id int32) { s.removeUpload(s.flows[id].src, id) }

// device holds what the hot paths read of a device: 64 bytes, one cache
// line (the array is page aligned), read when it uploads, downloads or
// receives a chunk.
type device struct {
	lastEnd   float64 // when its last download ended
	upT       float64 // when its uploads' left was last brought up to date
	bySeed    float64 // bytes received from the seed
	byPeers   float64 // bytes received from peers
	site      int32
	sitePos   int32 // index in its site's member list
	missing   int32 // chunks still needed (honest)
	upUsed    int32 // uploads in progress or requested
	downFlow  int32 // its download, -1 if none
	wantEnd   int32 // end of the wants it has sent the seed
	online    bool
	idle      bool // no download in progress or requested, no session with the seed
	announced bool
	waiting   bool
	retrying  bool
	atSeed    bool   // its wants are at the seed: the seed's answer is what it downloads
	ses       uint16 // its session with the seed, bumped at each start and end
}
