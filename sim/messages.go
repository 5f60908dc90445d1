package sim

// The seed and the sites talk only through messages that take the one-way
// WAN latency (wanDelay) to arrive, as bitswap's wants, cancels and blocks
// do: a site's device never changes the seed's state at once, nor the seed
// a device's. That delay is the lookahead a parallel run by site needs.

// Message kinds.
const (
	// Site to seed.
	msgWants     uint8 = iota // d asks for the chunks in its want list (central: size bytes)
	msgBlockList              // d asks for the release's block list
	msgCancel                 // d stops its session (offline): drop what is queued for it
	// Seed to site.
	msgChunk   // the last byte of chunk c reached d (c = -1: central, the whole rest)
	msgRefused // the seed granted none of d's wants
	msgPartial // central: d kept size bytes of a transfer that ended early
)

// A message is in flight between the seed and a site until t.
type message struct {
	t    float64
	seq  uint64 // insertion order, shared with the events: ties resolve the same way every run
	size float64
	d    int32
	c    int32
	n    int32 // msgWants: how many chunk ids it carries in wantIDs
	kind uint8
	ses  uint16 // the device's session it belongs to
	last bool   // msgChunk: the seed has nothing more queued for d
}

// idFifo holds the chunk ids of the want messages in flight, in the
// order of the messages.
type idFifo struct {
	ids  []int32
	head int
}

func (f *idFifo) push(ids []int32) {
	if f.head > 1<<16 && 2*f.head > len(f.ids) {
		// Compacted here, not in take: what take returned is read until
		// the message is handled, and handling a want sends none.
		f.ids = append(f.ids[:0], f.ids[f.head:]...)
		f.head = 0
	}
	f.ids = append(f.ids, ids...)
}

func (f *idFifo) take(n int32) []int32 {
	ids := f.ids[f.head : f.head+int(n)]
	f.head += int(n)
	return ids
}

// toSeed sends m from a site; it reaches the seed wanDelay from now.
func (s *state) toSeed(m message) {
	s.q.seq++
	m.t, m.seq = s.now+s.wanDelay, s.q.seq
	s.seedIn.push(m)
}

// toSite sends m from the seed; it reaches d's site wanDelay from now.
func (s *state) toSite(m message) {
	s.q.seq++
	m.t, m.seq = s.now+s.wanDelay, s.q.seq
	s.siteIn.push(m)
}
