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
	seq  uint64 // insertion order in the receiver's queue (the sender's until the barrier)
	size float64
	d    int32
	c    int32 // the chunk; msgWants: where its chunk ids start in the sender's wantOut (the seed's wantIn once handed over)
	n    int32 // msgWants: how many chunk ids it carries
	kind uint8
	ses  uint16 // the device's session it belongs to
	last bool   // msgChunk: the seed has nothing more queued for d
}

// toSeed sends m from a site; it reaches the seed wanDelay from now,
// handed over at the window's barrier (windows.go).
func (s *state) toSeed(m message) {
	s.q.seq++
	m.t, m.seq = s.now+s.wanDelay, s.q.seq
	s.outSeed = append(s.outSeed, m)
}

// toSite sends m from the seed; it reaches d's site wanDelay from now.
func (s *state) toSite(m message) {
	s.q.seq++
	m.t, m.seq = s.now+s.wanDelay, s.q.seq
	s.outSite = append(s.outSite, m)
}
