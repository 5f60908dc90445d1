package sim

import "math"

// A flow is one transfer: a chunk (mesh) or the rest of the release
// (central) from a source to a device. Its rate is set by max-min
// fairness among the flows of its source's group.
type flow struct {
	// 64 bytes, one cache line (the flows array is page aligned): the
	// float fields first, then the int32s, then the flags.
	size   float64
	left   float64
	rate   float64
	cap    float64 // the flow's own limit (receiver, loss, link)
	tag    float64 // seed flows: the site clock reading at completion
	src    int32   // device index; seedIdx for the seed
	dst    int32   // device index
	chunk  int32   // chunk index; -1 for a central whole-release transfer
	site   int32   // the receiver's site
	gen    uint32  // bumped when the flow slot is reused
	active bool    // latency elapsed, bytes moving
	live   bool
}

// A device's group is its active uploads (the seed's flows are in
// seedGroup). Every device downloads one flow at a time, so groups share
// no resource: when a flow starts or ends, only its own group's rates are
// recomputed (progressive filling), and only that group's next completion
// goes into the event queue. The group's time is the device's upT (the
// device's cache line is read at the same event anyway); its flow ids are
// a block of up: a count, then UploadSlots ids.

const eps = 1e-6 // bytes: a flow with less left is complete

// uploads is device d's active upload flows.
func (s *state) uploads(d int32) []int32 {
	b := s.up[int(d)*s.upStride:]
	return b[1 : 1+b[0]]
}

// addUpload puts flow id in device d's group.
func (s *state) addUpload(d, id int32) {
	b := s.up[int(d)*s.upStride:]
	b[1+b[0]] = id
	b[0]++
}

// removeUpload takes flow id out of device d's group.
func (s *state) removeUpload(d, id int32) {
	b := s.up[int(d)*s.upStride:]
	ids := b[1 : 1+b[0]]
	for i, x := range ids {
		if x == id {
			ids[i] = ids[len(ids)-1]
			b[0]--
			return
		}
	}
}

// advance brings device src's uploads to time now.
func (s *state) advance(src int32, now float64) {
	d := &s.dev[src]
	dt := now - d.upT
	if dt > 0 {
		for _, id := range s.uploads(src) {
			f := &s.flows[id]
			f.left -= f.rate * dt
		}
	}
	d.upT = now
}

// reschedule recomputes the rates of device gi's uploads and queues
// their next completion in place of the group's previous one.
func (s *state) reschedule(gi int32) {
	ids := s.uploads(gi)
	s.fillDevice(ids, float64(s.devUp))
	next := math.Inf(1)
	t := s.dev[gi].upT
	for _, id := range ids {
		f := &s.flows[id]
		if f.rate > 0 {
			next = min(next, t+max(f.left, 0)/f.rate)
		}
	}
	if math.IsInf(next, 1) {
		s.q.unset(gi)
		return
	}
	s.q.set(gi, next)
}

// fillDevice is progressive filling on one resource, the uploader's link
// of capacity c, with each flow also held to its own cap.
func (s *state) fillDevice(ids []int32, c float64) {
	n := len(ids)
	if n == 0 {
		return
	}
	// Few flows (upload slots): sort by cap, then fill. An insertion sort
	// (the order is total, so any sort gives the same): slices.SortFunc's
	// generic call costs more than sorting four.
	for i := 1; i < n; i++ {
		for j := i; j > 0 && cmpFloat(s.flows[ids[j]].cap, s.flows[ids[j-1]].cap, ids[j], ids[j-1]) < 0; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	for k, id := range ids {
		f := &s.flows[id]
		share := c / float64(n-k)
		if f.cap < share {
			f.rate = f.cap
			c -= f.cap
			continue
		}
		for _, id2 := range ids[k:] {
			s.flows[id2].rate = share
		}
		return
	}
}

func cmpFloat(a, b float64, ia, ib int32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return int(ia - ib)
}

// newFlow takes a flow slot.
func (s *state) newFlow(f flow) int32 {
	var id int32
	if n := len(s.freeFlows); n > 0 {
		id = s.freeFlows[n-1]
		s.freeFlows = s.freeFlows[:n-1]
		f.gen = s.flows[id].gen + 1
		s.flows[id] = f
	} else {
		id = int32(len(s.flows))
		s.flows = append(s.flows, f)
	}
	s.flows[id].live = true
	return id
}

func (s *state) freeFlow(id int32) {
	s.flows[id].live = false
	s.flows[id].active = false
	s.freeFlows = append(s.freeFlows, id)
}
