package exchange

import (
	"net"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestSiteFilterGrantsOncePerSiteAndWindow(t *testing.T) {
	sites := map[peer.ID]string{"a1": "A", "a2": "A", "b1": "B"}
	now := time.Unix(1000, 0)
	f := newSiteFilter(30*time.Second, func(p peer.ID) string { return sites[p] })
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
