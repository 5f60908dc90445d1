package host

import (
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

// quicFirst is go-libp2p's default dial ranking with a peer's TCP
// addresses held back at least 250 ms behind its QUIC ones on private
// networks too (the default waits 30 ms there, as on the internet it waits
// 250 ms). LAN neighbours found by mDNS dial each other with every
// address; with 30 ms a busy device often completes a TCP connection
// beside the QUIC one, and libp2p then opens streams on either. QUIC paces
// its packets, which rate-limited links (a shaped uplink that drops
// bursts) take much better than TCP's bursts (docs/PERFORMANCE.md section
// 4, "Session 7"). Where UDP is blocked TCP still follows, 250 ms later.
func quicFirst(addrs []ma.Multiaddr) []network.AddrDelay {
	ranked := swarm.DefaultDialRanker(addrs)
	quic := false
	for _, a := range ranked {
		if isQUIC(a.Addr) {
			quic = true
			break
		}
	}
	if !quic {
		return ranked
	}
	for i, a := range ranked {
		if _, err := a.Addr.ValueForProtocol(ma.P_TCP); err == nil {
			ranked[i].Delay = max(a.Delay, swarm.PublicTCPDelay)
		}
	}
	return ranked
}

func isQUIC(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_QUIC_V1)
	return err == nil
}
