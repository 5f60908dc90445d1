package agent

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshota/meshota/node/catchup"
	"github.com/meshota/meshota/protocol"
)

// fetchRoots asks p for the roots after ours, adopts those that verify
// (protocol's TrustedState.UpdateRoots, which also undoes a fast-forward
// when the release keys were replaced), and offers the manifest that
// needed them again.
func (a *Agent) fetchRoots(ctx context.Context, p peer.ID, manifest []byte) {
	a.mu.Lock()
	have := a.trusted.Root.Version
	a.mu.Unlock()
	chain, err := catchup.RequestRoots(ctx, a.cfg.Host, p, have, a.cfg.Limits)
	if err != nil || len(chain) == 0 {
		a.log.Debug("root chain request failed", "peer", p, "err", err)
		return
	}
	a.mu.Lock()
	uerr := a.trusted.UpdateRoots(chain, a.cfg.Now(), a.cfg.Limits)
	now := a.trusted.Root.Version
	if now == have {
		a.mu.Unlock()
		a.log.Warn("trust root update refused", "peer", p, "err", uerr)
		return
	}
	for _, b := range chain {
		if v := protocol.RootVersion(b, a.cfg.Limits); v > have && v <= now {
			a.st.Roots = append(a.st.Roots, b)
		}
	}
	if mark, ok := a.trusted.Channels[a.cfg.Channel]; ok {
		a.st.Mark = &mark
	} else {
		a.st.Mark = nil
	}
	err = a.st.save(a.cfg.StateDir)
	a.mu.Unlock()
	if err != nil {
		a.log.Error("cannot save state", "err", err)
		return
	}
	a.log.Info("trust root updated", "version", now, "partial_error", uerr)
	a.offer(ctx, manifest, p)
}
