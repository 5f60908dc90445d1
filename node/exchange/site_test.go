package exchange

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshota/meshota/content"
)

func TestSiteFilterGrantsOncePerSiteAndWindow(t *testing.T) {
	sites := map[peer.ID]string{"a1": "A", "a2": "A", "b1": "B"}
	now := time.Unix(1000, 0)
	f := newSiteFilter(30*time.Second, func(p peer.ID) string { return sites[p] }, chunkSized)
	f.now = func() time.Time { return now }
	x, y := blocks.NewBlock([]byte("x")).Cid(), blocks.NewBlock([]byte("y")).Cid()
	steps := []struct {
		p    peer.ID
		c    string
		dt   time.Duration
		want bool
	}{
		{"a1", "x", 0, true},                // first of site A
		{"a1", "x", 0, true},                // the same peer again (want-have, then want-block)
		{"a2", "x", 0, false},               // its neighbour: fetch it over the LAN
		{"b1", "x", 0, true},                // another site
		{"a2", "y", 0, true},                // another block goes to another peer of A
		{"a1", "y", 0, false},               //
		{"a2", "x", 31 * time.Second, true}, // window over: a1 may be gone
		{"a1", "x", 0, false},               // and now a2 holds the grant
	}
	for i, s := range steps {
		now = now.Add(s.dt)
		c := x
		if s.c == "y" {
			c = y
		}
		if got := f.allow(s.p, c); got != s.want {
			t.Fatalf("step %d: %s asks %s: allow=%v, want %v", i, s.p, s.c, got, s.want)
		}
	}
}

// TestSiteFilterDoesNotResendToTheSamePeer: a block handed to the network
// for a peer is not granted to that peer again within the window, unless
// the write failed or the peer was lost (the copy may be lost with it).
// A peer's grants last while a write to it is under way, however long.
func TestSiteFilterDoesNotResendToTheSamePeer(t *testing.T) {
	now := time.Unix(1000, 0)
	f := newSiteFilter(30*time.Second, func(peer.ID) string { return "A" }, chunkSized)
	f.now = func() time.Time { return now }
	x := blocks.NewBlock([]byte("x"))
	y := blocks.NewBlock([]byte("y"))
	z := blocks.NewBlock([]byte("z"))
	steps := []struct {
		do   string // "ask", "sent", "writing", "written", "failed", "lost"
		p    peer.ID
		b    blocks.Block
		dt   time.Duration
		want bool // for "ask"
	}{
		{"ask", "a1", x, 0, true},
		{"ask", "a1", y, 0, true},
		{"sent", "a1", x, 0, false},
		{"ask", "a1", x, time.Second, false}, // its copy is on its way
		{"ask", "a1", y, 0, true},            // not sent yet: a re-ask re-queues it
		{"ask", "a2", x, 0, false},           // once per site, as before
		{"failed", "a1", x, 0, false},        // the write failed
		{"ask", "a1", x, 0, true},            //
		{"sent", "a1", x, 0, false},          //
		{"ask", "a1", x, 29 * time.Second, false},
		{"ask", "a1", x, time.Second, true},     // window over
		{"sent", "a1", x, 0, false},             //
		{"lost", "a1", nil, time.Second, false}, // disconnected: the copy may be lost
		{"ask", "a1", x, 0, true},
		{"ask", "a1", z, 0, true},
		{"writing", "a1", y, 0, false},             // a write that takes minutes
		{"ask", "a2", z, 100 * time.Second, false}, // a1's grants hold meanwhile
		{"written", "a1", y, 0, false},             //
		{"ask", "a2", z, 29 * time.Second, false},  // and a window after it
		{"ask", "a2", z, time.Second, true},        // then they lapse
	}
	for i, s := range steps {
		now = now.Add(s.dt)
		switch s.do {
		case "ask":
			if got := f.allow(s.p, s.b.Cid()); got != s.want {
				t.Fatalf("step %d: %s asks %s: allow=%v, want %v", i, s.p, s.b.RawData(), got, s.want)
			}
		case "sent":
			f.sending(s.p, []blocks.Block{s.b})
			f.sentTo(s.p, []blocks.Block{s.b}, nil)
		case "writing":
			f.sending(s.p, []blocks.Block{s.b})
		case "written":
			f.sentTo(s.p, []blocks.Block{s.b}, nil)
		case "failed":
			f.sending(s.p, []blocks.Block{s.b})
			f.sentTo(s.p, []blocks.Block{s.b}, errors.New("stream reset"))
		case "lost":
			f.disconnected(s.p)
		}
	}
}

func TestSiteOfIP(t *testing.T) {
	cases := []struct{ ip, want string }{
		{"10.201.3.7", "10.201.3.0/24"},
		{"10.201.3.200", "10.201.3.0/24"},
		{"192.168.1.5", "192.168.1.0/24"},
		{"203.0.113.9", "203.0.113.9"},
		{"fd00:1:2:3:4::1", "fd00:1:2:3::/64"},
		{"2001:db8:aa:bb00::1", "2001:db8:aa:bb00::/56"},
		{"127.0.0.1", "peer:" + peer.ID("p").String()},
	}
	for _, c := range cases {
		if got := siteOfIP(net.ParseIP(c.ip), "p"); got != c.want {
			t.Errorf("%s: site %q, want %q", c.ip, got, c.want)
		}
	}
}

// TestSiteOfAddr: a device's site is the same whether it reached the
// seed over TCP or QUIC (meshota listens on both by default).
func TestSiteOfAddr(t *testing.T) {
	cases := []struct{ addr, want string }{
		{"/ip4/10.201.3.7/tcp/4001", "10.201.3.0/24"},
		{"/ip4/10.201.3.7/udp/4001/quic-v1", "10.201.3.0/24"},
		{"/ip4/203.0.113.9/udp/53211/quic-v1", "203.0.113.9"},
		{"/ip6/fd00:1:2:3:4::1/udp/4001/quic-v1", "fd00:1:2:3::/64"},
	}
	for _, c := range cases {
		if got, ok := siteOfAddr(ma.StringCast(c.addr), "p"); !ok || got != c.want {
			t.Errorf("%s: site %q (%v), want %q", c.addr, got, ok, c.want)
		}
	}
	if got, ok := siteOfAddr(ma.StringCast("/dns4/seed.example.net/tcp/4001"), "p"); ok {
		t.Errorf("an address without an IP has site %q", got)
	}
}

// TestSeedSendsABlockOnceToADeviceThatReasks: a seed (once per site)
// behind a slow uplink sends a device its blocks; the device's quick
// re-ask fires while a copy is still on its way (the gaps between the
// seed's writes are longer than the device's quick clock), cancels and
// asks the seed again. The seed must not send that device the same block
// a second time: bitswap's server has already taken the block off the
// device's wantlist when it started writing it, so the repeated
// want-block is a new request, and without a guard the once-per-site rule
// grants it (the same peer asking again). Seen as 1.00–1.35 copies per
// site in TestSitesBehindSlowUplinks (cmd/meshota) under load.
func TestSeedSendsABlockOnceToADeviceThatReasks(t *testing.T) {
	blks := makeBlocks(t, 4, 64<<10)
	seedStore := newStore()
	for _, b := range blks {
		seedStore.Put(t.Context(), b)
	}
	// 64 KiB/s with 16 KiB pieces: a piece every 250 ms, and a 64 KiB
	// block takes a second to write.
	seedLog, _ := debugLog(t, "seed")
	seed := newPeerWith(t, seedStore, Config{OncePerSite: 30 * time.Second,
		SiteOf: func(peer.ID) string { return "site" }, Logger: seedLog})
	devLog, devLines := debugLog(t, "device")
	// The device re-asks when no block came for 600 ms: the seed answers
	// a want-have for a block it grants with the block (no HAVE, so no
	// quick re-ask), and a block here takes a second.
	dev := newPeerWith(t, newStore(), Config{Cap: Rate{Down: 64 << 10}, StallTimeout: 600 * time.Millisecond, QuickStall: 50 * time.Millisecond,
		Logger: devLog})
	dev.ex.SetSeeds([]peer.ID{seed.h.ID()})
	link(t, dev, seed)
	start := time.Now()
	if n := fetchAll(t, dev.ex, blks); n != len(blks) {
		t.Fatalf("got %d of %d blocks", n, len(blks))
	}
	reasks := strings.Count(devLines(), "block fetch stalled")
	size := uint64(len(blks) * len(blks[0].RawData()))
	served := seed.ex.Traffic().Served
	t.Logf("fetched %d bytes in %v, %d re-asks; the seed served %d bytes", size, time.Since(start).Round(time.Millisecond), reasks, served)
	if reasks == 0 {
		t.Fatal("the device never re-asked: the test does not exercise the re-ask")
	}
	if served != size {
		t.Fatalf("the seed served %d bytes for %d: it sent the re-asking device blocks it had already sent it (%.2f copies)", served, size, float64(served)/float64(size))
	}
}

// debugLog is a debug-level logger whose lines the test prints, under
// name, if it fails, and a function returning the lines so far.
func debugLog(t *testing.T, name string) (*slog.Logger, func() string) {
	var b strings.Builder
	var mu sync.Mutex
	lines := func() string {
		mu.Lock()
		defer mu.Unlock()
		return b.String()
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s:\n%s", name, lines())
		}
	})
	return slog.New(slog.NewTextHandler(&syncWriter{w: &b, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug})), lines
}

// chunkSized says every block is a chunk of average size.
func chunkSized(cid.Cid) int64 { return content.AvgChunkSize }
