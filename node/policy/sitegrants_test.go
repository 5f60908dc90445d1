package policy

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func TestSiteGrants(t *testing.T) {
	g := NewSiteGrants[string, string, string](30*time.Second, 1)
	now := time.Unix(1000, 0)
	steps := []struct {
		site, block, peer string
		dt                time.Duration
		want              bool
	}{
		{"A", "x", "a1", 0, true},
		{"A", "x", "a1", 0, true},  // the same peer again
		{"A", "x", "a2", 0, false}, // its neighbour fetches over the LAN
		{"B", "x", "b1", 0, true},  // another site
		{"A", "y", "a2", 0, true},  // another block, another peer of A
		{"A", "x", "a2", 31 * time.Second, true},
		{"A", "x", "a1", 0, false},
	}
	for i, s := range steps {
		now = now.Add(s.dt)
		if got := g.Allow(s.site, s.block, 1, s.peer, now); got != s.want {
			t.Fatalf("step %d: %s of %s asks %s: %v, want %v", i, s.peer, s.site, s.block, got, s.want)
		}
	}
}

func TestSiteGrantsMemoryIsBounded(t *testing.T) {
	g := NewSiteGrants[int, int, int](time.Second, 1)
	now := time.Unix(0, 0)
	peak, peakPeers := 0, 0
	for i := range 200000 {
		now = now.Add(time.Millisecond) // 1000 live grants at any time
		g.Allow(i%7, i, 1, i, now)
		peak = max(peak, g.Len())
		peers := 0
		if i%1000 == 0 {
			for _, sh := range g.sites {
				peers += len(sh.peers)
			}
		}
		peakPeers = max(peakPeers, peers)
	}
	if peak > 2*4096+2000 {
		t.Fatalf("%d grants held for about 1000 live ones", peak)
	}
	if active := int(ShareHorizon / time.Millisecond); peakPeers > active+7 {
		t.Fatalf("%d peers' shares held for %d active ones", peakPeers, active)
	}
}

func TestSiteGrantsLastWhileTheirPeerIsServed(t *testing.T) {
	g := NewSiteGrants[string, string, string](30*time.Second, 1)
	t0 := time.Unix(1000, 0)
	if !g.Allow("A", "x", 1, "a1", t0) {
		t.Fatal("first grant refused")
	}
	// a1 is sent a block every 20 s: slower than the window, but served.
	for k := 1; k <= 5; k++ {
		now := t0.Add(time.Duration(k) * 20 * time.Second)
		g.Sending("a1", now) // one block, sent at once
		g.Sent("a1", now)
		if g.Allow("A", "x", 1, "a2", now.Add(time.Second)) {
			t.Fatalf("at %v the grant to a1, still being served, went to a2", now.Sub(t0))
		}
	}
	// a1 stops being served: a window later its grant lapses.
	later := t0.Add(100*time.Second + 31*time.Second)
	if !g.Allow("A", "x", 1, "a2", later) {
		t.Fatal("a grant outlived its peer's last block by more than the window")
	}
}

// TestSiteGrantsLastWhileASendIsUnderWay: a seed shared by many peers can
// take longer than the window to send a peer one block; the grants of a
// peer with a send under way must not lapse, or its neighbours are
// granted the same blocks (the simulator's 1,000,000-device fleet sent
// 8 copies a site before this).
func TestSiteGrantsLastWhileASendIsUnderWay(t *testing.T) {
	const window = 30 * time.Second
	g := NewSiteGrants[string, string, string](window, 1)
	t0 := time.Unix(1000, 0)
	at := func(s time.Duration) time.Time { return t0.Add(s * time.Second) }
	if !g.Allow("A", "x", 1, "a1", t0) {
		t.Fatal("first grant refused")
	}
	// Two sends overlap (node/exchange writes up to 8 messages to a peer
	// at once); one ending must not end the other.
	g.Sending("a1", at(1))
	g.Sending("a1", at(2))
	g.Sent("a1", at(3))
	for _, s := range []time.Duration{40, 200, 1000} {
		if g.Allow("A", "x", 1, "a2", at(s)) {
			t.Fatalf("at %ds, with a send to a1 under way since 2 s, its grant went to a2", s)
		}
		g.sweep(g.tick(at(s))) // a sweep must keep it too
	}
	g.Sent("a1", at(1000))
	if g.Allow("A", "x", 1, "a2", at(1029)) {
		t.Fatal("the grant lapsed within a window of its peer's last send")
	}
	if !g.Allow("A", "x", 1, "a2", at(1031)) {
		t.Fatal("a grant outlived its peer's last send by more than the window")
	}
	g.sweep(g.tick(at(2000)))
	if _, ok := g.served["a1"]; ok {
		t.Fatal("a peer with no send under way is still held a window after its last")
	}
}

// TestSiteGrantsSpreadASite plays the devices of one site asking the seed
// for the same windows of blocks in index order, every device asking each
// window in turn, a1 always first (before the spreading rule it was
// granted everything). As agents do, each first asks for the release's
// block list (block -1), which makes them all active. Every block must go
// to exactly one device, and none may hold more than its share
// (blocks / devices) + ShareSlack + 1: its uplink then carries no more
// than that to each neighbour.
func TestSiteGrantsSpreadASite(t *testing.T) {
	cases := []struct {
		name          string
		peers, blocks int
		window        int // blocks a device asks at once
		ahead         int // windows a1 asks before the others ask them
	}{
		{"lone device gets everything", 1, 64, 8, 0},
		{"two devices", 2, 64, 8, 0},
		{"eight devices", 8, 64, 8, 0},
		{"eight devices, two windows in flight", 8, 64, 16, 0},
		{"eight devices, the first one window ahead", 8, 64, 8, 1},
		{"eight devices, the first four windows ahead", 8, 256, 8, 4},
		{"sixteen devices, few blocks", 16, 12, 8, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewSiteGrants[string, int, int](30*time.Second, 1)
			now := time.Unix(1000, 0)
			holder := map[int]int{}
			got := make([]int, c.peers)
			ask := func(p, from, n int) {
				for b := from; b < min(from+n, c.blocks); b++ {
					now = now.Add(time.Millisecond)
					if !g.Allow("A", b, 1, p, now) {
						continue
					}
					if h, ok := holder[b]; ok && h != p {
						t.Fatalf("block %d granted to device %d, then to %d: two copies for the site", b, h, p)
					}
					if _, ok := holder[b]; !ok {
						got[p]++
					}
					holder[b] = p
				}
			}
			for p := range c.peers {
				ask(p, -1, 1)
			}
			for w := 0; w*c.window < c.blocks+c.ahead*c.window; w++ {
				if first := (w + c.ahead) * c.window; first < c.blocks {
					ask(0, first, c.window)
				}
				if w*c.window < c.blocks {
					for p := 1; p < c.peers; p++ {
						ask(p, w*c.window, c.window)
					}
				}
			}
			if len(holder) != c.blocks+1 {
				t.Fatalf("%d of %d blocks granted: the rest would wait for a stall", len(holder), c.blocks+1)
			}
			share := (c.blocks + 1 + c.peers - 1) / c.peers
			for p, n := range got {
				if n > share+ShareSlack+1 {
					t.Fatalf("device %d was granted %d blocks (all: %v), its share is %d + %d", p, n, got, share, ShareSlack)
				}
			}
		})
	}
}

// TestSiteGrantsNeighboursGone: a device whose neighbours stopped asking
// (done or gone) may be refused for fairness at first, but is granted
// everything once they have been silent for ShareHorizon, which is before
// it asks again after a stall (StallTimeout).
func TestSiteGrantsNeighboursGone(t *testing.T) {
	g := NewSiteGrants[string, int, int](30*time.Second, 1)
	now := time.Unix(1000, 0)
	b := 0
	for range 4 { // eight devices share 32 blocks
		for p := range 8 {
			for range 8 {
				g.Allow("A", b%32+(b/32)*1000, 1, p, now)
				b++
			}
		}
	}
	// Only device 0 goes on asking, for blocks nobody holds.
	refused := 0
	for b := 100; b < 140; b++ {
		now = now.Add(10 * time.Millisecond)
		if !g.Allow("A", b, 1, 0, now) {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("device 0 was granted 40 more blocks while 7 neighbours with fewer were active: no fair share")
	}
	// Refused blocks are asked for again after a stall.
	now = now.Add(StallTimeout)
	for b := 100; b < 140; b++ {
		if !g.Allow("A", b, 1, 0, now) {
			t.Fatalf("block %d refused at a stall re-ask to a device whose neighbours left", b)
		}
	}
}

// TestSiteGrantsBlockAskedByAllIsGranted: the devices of a site each ask
// for block z when above their share (each took blocks since); z still
// goes to one of them, the last to ask, instead of waiting for a stall.
func TestSiteGrantsBlockAskedByAllIsGranted(t *testing.T) {
	g := NewSiteGrants[string, int, string](30*time.Second, 1)
	now := time.Unix(1000, 0)
	peers := []string{"a", "b", "c"}
	for _, p := range peers {
		g.Allow("A", -1, 1, p, now) // the block list: all three are active
	}
	const z = 1000
	next := 0
	for i, p := range peers {
		for g.Allow("A", next, 1, p, now) { // p takes blocks until above its share
			next++
		}
		next++
		if i < len(peers)-1 {
			for range 3 { // asking again (bitswap does) is still one peer
				if g.Allow("A", z, 1, p, now) {
					t.Fatalf("%s, above its share, was granted z after asking again", p)
				}
			}
			continue
		}
		if !g.Allow("A", z, 1, p, now) {
			t.Fatalf("%s, the last of the site to ask for z, was refused it", p)
		}
	}
}

// TestSiteGrantsNewcomerStartsAtTheMean: a device that becomes active (or
// comes back after ShareHorizon) starts at its site's mean, so it takes
// its share of the next blocks, not a burst of them that its uplink alone
// would then carry to its neighbours.
func TestSiteGrantsNewcomerStartsAtTheMean(t *testing.T) {
	g := NewSiteGrants[string, int, string](30*time.Second, 1)
	now := time.Unix(1000, 0)
	for b := range 20 {
		g.Allow("A", b, 1, []string{"a1", "a2"}[b%2], now)
	}
	steps := []struct {
		peer  string
		block int
		want  bool
	}{
		{"a3", 20, true}, // a3 starts at 10 (21 grants over 2), as a1 and a2
		{"a3", 21, true},
		{"a3", 22, true},  // a3 13, mean 34/3
		{"a3", 23, false}, // more than ShareSlack above
		{"a1", 23, true},
		{"a2", 24, true},
		{"a3", 24, false}, // granted to a2: a3 fetches it over the LAN
		{"a3", 25, true},  // a3 13, mean 36/3
	}
	for i, s := range steps {
		if got := g.Allow("A", s.block, 1, s.peer, now); got != s.want {
			t.Fatalf("step %d: %s asks %d: %v, want %v", i, s.peer, s.block, got, s.want)
		}
	}
}

// BenchmarkSiteGrantsAllow: sites of 20 devices asking for 400 blocks in
// turn, as the simulator's seed judges them.
func BenchmarkSiteGrantsAllow(b *testing.B) {
	g := NewSiteGrants[int32, int32, int32](30*time.Second, 1)
	now := time.Unix(0, 0)
	i := 0
	for b.Loop() {
		site := int32(i % 1000)
		dev := site*20 + int32(i/1000%20)
		g.Allow(site, int32(i/20000%400), 1, dev, now)
		now = now.Add(time.Microsecond)
		i++
	}
}

// TestSiteGrantsSharesAreBytes: shares count bytes, so a device that was
// granted two of the largest chunks is above its share where one of
// average size would not be, and small blocks (index pages, the keyring)
// do not take a chunk's share each.
func TestSiteGrantsSharesAreBytes(t *testing.T) {
	const kib = 1 << 10
	g := NewSiteGrants[string, string, string](30*time.Second, 256*kib)
	now := time.Unix(1000, 0)
	for _, p := range []string{"a1", "a2", "a3"} {
		g.Allow("A", "list", 0, p, now) // the block list: all three are active
	}
	steps := []struct {
		peer, block string
		size        int64
		want        bool
	}{
		{"a1", "i1", 2 * kib, true}, // small blocks: a1 takes them all
		{"a1", "i2", 2 * kib, true},
		{"a1", "i3", 2 * kib, true},
		{"a1", "i4", 2 * kib, true},
		{"a2", "c1", 512 * kib, true},
		{"a2", "c2", 512 * kib, false}, // 512 KiB over a mean of 174: more than 256 above
		{"a3", "c2", 512 * kib, true},
		{"a1", "c3", 256 * kib, true}, // a1 264 KiB
		{"a1", "c4", 128 * kib, true},
		{"a1", "c5", 128 * kib, true},
		{"a1", "c6", 128 * kib, true},
		{"a1", "c7", 128 * kib, true},
		{"a1", "c8", 128 * kib, true},  // a1 904 KiB, mean 643: 261 above
		{"a1", "c9", 128 * kib, false}, // more than 256 above the mean
	}
	for i, s := range steps {
		if got := g.Allow("A", s.block, s.size, s.peer, now); got != s.want {
			t.Fatalf("step %d: %s asks %s (%d KiB): %v, want %v", i, s.peer, s.block, s.size/kib, got, s.want)
		}
	}
}

// blockSize is block b's size in the oracle comparison: 128–512, as
// chunks are in KiB (the rule's block, its slack, is 256).
func blockSize(b int) int64 {
	h := uint32(b) * 2654435761
	return 128 + int64(h>>16)%385
}

// TestSiteGrantsMatchesOracle plays random sequences of requests and
// served blocks, at times that never go backwards (wall clock only, as
// the simulator passes, or with monotonic readings, as time.Now gives),
// to SiteGrants and to its former implementation (the oracle): every
// decision, and what they hold, must be the same.
func TestSiteGrantsMatchesOracle(t *testing.T) {
	cases := []struct {
		name                 string
		sites, blocks, peers int
		window               time.Duration
		maxStep              time.Duration // most time between two calls
	}{
		{"one site, few blocks", 1, 8, 4, 30 * time.Second, 200 * time.Millisecond},
		{"sites sharing peers' names", 3, 64, 12, 30 * time.Second, 50 * time.Millisecond},
		{"short window", 4, 32, 8, time.Second, 100 * time.Millisecond},
		{"many blocks, sweeps", 8, 5000, 40, 30 * time.Second, 2 * time.Millisecond},
		{"slow, idle peers expire", 2, 16, 6, 30 * time.Second, 3 * time.Second},
		{"three peers a site", 4, 16, 3, 2 * time.Second, 100 * time.Millisecond},
		{"two peers a site", 2, 8, 2, 500 * time.Millisecond, 20 * time.Millisecond},
	}
	for ci, c := range cases {
		for _, mono := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/monotonic=%v", c.name, mono), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(ci), 1))
				g := NewSiteGrants[int, int, int](c.window, 256)
				o := newOracleGrants[int, int, int](c.window, 256)
				now := time.Unix(1000, 0)
				if mono {
					now = time.Now()
				}
				decisions := map[bool]int{}
				fresh := 0
				for i := range 60000 {
					// Steps of whole milliseconds, so that times fall
					// exactly on the window's and ShareHorizon's bounds.
					step := func(d time.Duration) {
						now = now.Add(time.Duration(rng.Int64N(int64(d/time.Millisecond))+1) * time.Millisecond)
					}
					switch r := rng.IntN(100); {
					case r < 30: // several calls at the same time
					case r < 99:
						step(c.maxStep)
					default:
						step(2 * c.window)
					}
					// Low-numbered peers ask more: shares are uneven.
					p := rng.IntN(rng.IntN(c.peers) + 1)
					switch r := rng.IntN(20); {
					case r < 4: // a send that ends at once
						g.Sending(p, now)
						o.Sending(p, now)
						g.Sent(p, now)
						o.Sent(p, now)
						continue
					case r == 4:
						g.Sending(p, now)
						o.Sending(p, now)
						continue
					case r == 5:
						// Unpaired at times: a Sent without a Sending
						// must not count below none.
						g.Sent(p, now)
						o.Sent(p, now)
						continue
					}
					ask := func(site, b int) {
						size := blockSize(b)
						got, want := g.Allow(site, b, size, p, now), o.Allow(site, b, size, p, now)
						if got != want {
							t.Fatalf("call %d: %d of %d asks %d: %v, the oracle says %v", i, p, site, b, got, want)
						}
						decisions[got]++
					}
					site := rng.IntN(c.sites)
					switch rng.IntN(4) {
					case 0:
						ask(site, rng.IntN(c.blocks))
					case 1:
						// p takes blocks nobody asked for, getting above
						// its share...
						for range rng.IntN(6) + 1 {
							ask(site, -1-fresh)
							fresh++
						}
						fallthrough
					default:
						// ...and the peers of a site ask for the same
						// blocks at about the same time: refusals for
						// shares add up.
						ask(site, (i/64+rng.IntN(4))%c.blocks)
					}
					if g.Len() != len(o.granted) {
						t.Fatalf("call %d: %d grants held, the oracle holds %d", i, g.Len(), len(o.granted))
					}
				}
				if decisions[false] < 1000 || decisions[true] < 1000 {
					t.Fatalf("%d grants and %d refusals: too few of one to compare", decisions[true], decisions[false])
				}
				if len(g.sites) != len(o.sites) || len(g.served) != len(o.served) {
					t.Fatalf("%d sites and %d served peers held, the oracle holds %d and %d",
						len(g.sites), len(g.served), len(o.sites), len(o.served))
				}
				for s, sh := range g.sites {
					osh := o.sites[s]
					if osh == nil || len(sh.peers) != osh.order.Len() || sh.bytes != osh.grants {
						t.Fatalf("site %d differs from the oracle's", s)
					}
				}
			})
		}
	}
}
