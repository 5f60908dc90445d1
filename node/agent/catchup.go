package agent

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshota/meshota/node/catchup"
	"github.com/meshota/meshota/protocol"
)

// serveCatchup answers peers that ask for the latest manifest or for trust
// roots: what this node accepted, exactly as signed.
func (a *Agent) serveCatchup() { catchup.Serve(a.cfg.Host, a.cfg.Limits, a.log, a) }

func (a *Agent) stopServing() { catchup.Stop(a.cfg.Host) }

// LatestManifest implements catchup.Source.
func (a *Agent) LatestManifest(channel string) []byte {
	if channel != a.cfg.Channel {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st.Manifest
}

// RootsAfter implements catchup.Source.
func (a *Agent) RootsAfter(version uint64) [][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return protocol.RootsAfter(a.st.Roots, version, a.cfg.Limits)
}

// catchupLoop asks every newly connected peer, and every interval a few
// connected ones, for a newer manifest: a device that was offline during an
// announcement, or joined the mesh late, still learns of the release.
func (a *Agent) catchupLoop(ctx context.Context) {
	h := a.cfg.Host
	connected := make(chan peer.ID, 64)
	n := &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		select {
		case connected <- c.RemotePeer():
		default: // the periodic round will get to it
		}
	}}
	h.Network().Notify(n)
	defer h.Network().StopNotify(n)
	for _, p := range h.Network().Peers() {
		go a.catchUp(ctx, p)
	}
	tick := time.NewTicker(a.cfg.CatchupInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-connected:
			go a.catchUp(ctx, p)
		case <-tick.C:
			peers := h.Network().Peers()
			rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
			for _, p := range peers[:min(3, len(peers))] {
				go a.catchUp(ctx, p)
			}
		}
	}
}

func (a *Agent) catchUp(ctx context.Context, p peer.ID) {
	a.mu.Lock()
	var have uint64
	if a.st.Mark != nil {
		have = a.st.Mark.Sequence
	}
	a.mu.Unlock()
	data, err := catchup.RequestManifest(ctx, a.cfg.Host, p, a.cfg.Channel, have, a.cfg.Limits)
	if err != nil {
		a.log.Debug("catch-up failed", "peer", p, "err", err)
		return
	}
	if data != nil {
		a.offer(ctx, data, p)
	}
}
