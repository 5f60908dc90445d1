package sim

import "math/bits"

// The seed's side: it judges a device's wants when they arrive
// (policy.SiteGrants), then sends the granted chunks back to back on its
// own, as bitswap does, until none is left or a cancel arrives. It reads
// nothing of a site's state but what messages carried and what never
// changes (a device's site), so that it can run apart from the sites.

// seedPeer is what the seed keeps of a device.
type seedPeer struct {
	flow   int32  // the chunk being sent to it, -1 if none
	ses    uint16 // the session of the wants it serves
	queued bool   // waiting for one of the seed's Slots
	busy   bool   // the seed is sending to it or has it queued (seedBusy)
}

// seedBusy tells the grant rule when the seed starts and stops serving d:
// d's grants stay live while its chunks are queued or being sent, however
// long a saturated seed takes (a chunk shared with a million flows takes
// minutes), and a window after that.
func (s *state) seedBusy(d int32, busy bool) {
	p := &s.peers[d]
	if s.grants == nil || p.busy == busy {
		return
	}
	p.busy = busy
	if busy {
		s.grants.Sending(d, s.wallClock())
	} else {
		s.grants.Sent(d, s.wallClock())
	}
}

// onWants judges device d's wants (m) at the seed.
func (s *state) onWants(m message) {
	d := m.d
	ids := s.wantIn[m.c : m.c+m.n]
	si := s.dev[d].site
	if s.seedCut[si] {
		return // sent before the cut: the device ended its session at the cut
	}
	p := &s.peers[d]
	p.ses = m.ses
	if s.strategy == StrategyCentral {
		s.seedSend(d, -1, m.size)
		return
	}
	gw := s.granted[int(d)*s.words : (int(d)+1)*s.words]
	any := false
	at := s.wallClock()
	for _, c := range ids {
		if s.grants == nil || s.grants.Allow(si, c, int64(s.chunkLen[c]), d, at) {
			gw[c>>6] |= 1 << (c & 63)
			any = true
		}
	}
	if !any {
		// Bitswap's DONT_HAVE: what it asked went to neighbours.
		s.toSite(message{kind: msgRefused, d: d, ses: m.ses})
		return
	}
	s.seedSendNext(d)
}

// onBlockList records d's request for the block list: the seed's grant
// rule sees d active in its site before it asks for any chunk.
func (s *state) onBlockList(m message) {
	if s.grants != nil && !s.seedCut[s.dev[m.d].site] {
		s.grants.Allow(s.dev[m.d].site, blockListChunk, 0, m.d, s.wallClock()) // a few bytes: no share
	}
}

// onCancel drops what the seed queued for d, and stops sending it.
func (s *state) onCancel(m message) {
	if p := &s.peers[m.d]; p.ses == m.ses {
		// Bytes sent since d went offline, a cancel's delay ago, and
		// those still on their way then, are lost.
		s.seedDrop(m.d, 2*s.wanDelay)
	}
}

// seedDrop stops the seed's session with d: its transfer ends (central:
// the whole chunks d received are reported to it, the bytes sent in the
// last lost seconds not counted) and its grants still queued are dropped.
func (s *state) seedDrop(d int32, lost float64) {
	s.seedBusy(d, false)
	p := &s.peers[d]
	p.queued = false
	clear(s.granted[int(d)*s.words : (int(d)+1)*s.words])
	id := p.flow
	if id < 0 {
		return
	}
	p.flow = -1
	f := &s.flows[id]
	rate := s.seed.rate(id)
	s.seed.remove(id, s.now) // brings f.left up to date
	if f.chunk < 0 {
		// What reached d: what was sent lost seconds ago, as far as the
		// current rate tells.
		if got := f.size - max(f.left, 0) - lost*rate; got > 0 {
			s.toSite(message{kind: msgPartial, d: d, size: got})
		}
	}
	s.freeFlow(id)
	s.seedFreeSlot()
}

// takeGranted removes the first chunk the seed granted d and has not sent
// yet from d's grants and returns it, -1 if none is left.
func (s *state) takeGranted(d int32) int32 {
	gw := s.granted[int(d)*s.words : (int(d)+1)*s.words]
	for w, x := range gw {
		if x != 0 {
			c := int32(w*64 + bits.TrailingZeros64(x))
			gw[w] &^= 1 << (c & 63)
			return c
		}
	}
	return -1
}

// seedSendNext sends d its next granted chunk, if any.
func (s *state) seedSendNext(d int32) {
	if c := s.takeGranted(d); c >= 0 {
		s.seedSend(d, c, s.chunkLen[c])
	}
}

// seedSend starts sending size bytes of chunk c to d when one of the
// seed's Slots is free; d waits in the seed's queue otherwise.
func (s *state) seedSend(d, c int32, size float64) {
	s.seedBusy(d, true)
	p := &s.peers[d]
	if p.flow < 0 && !p.queued {
		if s.sc.Seed.Slots > 0 && s.seedActive >= s.sc.Seed.Slots {
			p.queued = true
			// The chunk goes back to the queue: it is sent when d's turn comes.
			if c >= 0 {
				s.granted[int(d)*s.words+int(c>>6)] |= 1 << (c & 63)
			}
			s.seedQueue = append(s.seedQueue, seedTurn{d: d, c: c, size: size})
			return
		}
		s.seedActive++
	}
	id := s.newFlow(flow{src: s.seedIdx, dst: d, chunk: c, size: size, left: size,
		cap: min(float64(s.devDown), s.wanCap), site: s.dev[d].site, active: true})
	p.flow = id
	s.seed.add(id, s.now)
}

// seedTurn is a device waiting for a seed slot (central: with its size).
type seedTurn struct {
	d, c int32
	size float64
}

// seedSent handles the seed's last byte of flow id: the chunk is on its way
// to the device, and the next granted one starts at once.
func (s *state) seedSent(id int32) {
	f := s.flows[id]
	s.freeFlow(id)
	d := f.dst
	p := &s.peers[d]
	p.flow = -1
	next := s.takeGranted(d)
	if next < 0 {
		s.seedBusy(d, false)
	}
	s.toSite(message{kind: msgChunk, d: d, c: f.chunk, size: f.size, ses: p.ses, last: next < 0})
	if next >= 0 {
		// d keeps its slot: seedSend takes the one this frees at once.
		s.seedActive--
		s.seedSend(d, next, s.chunkLen[next])
		return
	}
	s.seedFreeSlot()
}

// seedFreeSlot gives a slot that ended to the next device queued.
func (s *state) seedFreeSlot() {
	s.seedActive--
	for s.seedQHead < len(s.seedQueue) && (s.sc.Seed.Slots == 0 || s.seedActive < s.sc.Seed.Slots) {
		t := s.seedQueue[s.seedQHead]
		s.seedQHead++
		p := &s.peers[t.d]
		if !p.queued {
			continue // cancelled, or cut, while it waited
		}
		p.queued = false
		if t.c >= 0 {
			s.seedSendNext(t.d)
		} else {
			s.seedSend(t.d, -1, t.size)
		}
	}
	if s.seedQHead > 1024 && s.seedQHead*2 > len(s.seedQueue) {
		s.seedQueue = append(s.seedQueue[:0], s.seedQueue[s.seedQHead:]...)
		s.seedQHead = 0
	}
}

// seedPartition cuts site si from the seed (its transfers end, its
// grants queued are dropped) or heals it.
func (s *state) seedPartition(si int32, cut bool) {
	s.seedCut[si] = cut
	if !cut {
		return
	}
	for _, d := range s.sites[si] {
		if p := &s.peers[d]; p.flow >= 0 || p.queued {
			s.seedDrop(d, s.wanDelay) // what was on its way at the cut is lost
		}
	}
}
