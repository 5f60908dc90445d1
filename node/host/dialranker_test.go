package host

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

func TestQUICFirstHoldsTCPBack(t *testing.T) {
	rank := func(addrs ...string) map[string]time.Duration {
		var in []ma.Multiaddr
		for _, a := range addrs {
			in = append(in, ma.StringCast(a))
		}
		out := map[string]time.Duration{}
		for _, d := range quicFirst(in) {
			out[d.Addr.String()] = d.Delay
		}
		if len(out) != len(addrs) {
			t.Fatalf("%v ranked as %v", addrs, out)
		}
		return out
	}
	const tcp, quic = "/ip4/10.201.1.2/tcp/4001", "/ip4/10.201.1.2/udp/4001/quic-v1"
	// A LAN neighbour: QUIC at once, TCP only if QUIC has not connected
	// within 250 ms (the default gives it 30 ms).
	if got := rank(tcp, quic); got[quic] != 0 || got[tcp] < swarm.PublicTCPDelay {
		t.Errorf("private TCP and QUIC: %v", got)
	}
	// Without QUIC, TCP at once.
	if got := rank(tcp); got[tcp] != 0 {
		t.Errorf("private TCP only: %v", got)
	}
	// On the internet, the default's ranking.
	const ptcp, pquic = "/ip4/203.0.113.9/tcp/4001", "/ip4/203.0.113.9/udp/4001/quic-v1"
	if got := rank(ptcp, pquic); got[pquic] != 0 || got[ptcp] != swarm.PublicTCPDelay {
		t.Errorf("public TCP and QUIC: %v", got)
	}
}
