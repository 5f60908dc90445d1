package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/node/catchup"
)

// maxRootEnvelope bounds one signed root.
const maxRootEnvelope = 64 << 10

// verifyRootChain checks the stored chain: the first root is trusted as
// configured (self-signed, threshold of its own root role), each later one
// must be signed by a threshold of its predecessor's root keys and its own.
// Expiry is checked only on the newest, as for new releases.
func verifyRootChain(chain [][]byte, now time.Time) (*crypto.Root, error) {
	envs := make([]*crypto.Envelope, len(chain))
	for i, b := range chain {
		env, err := crypto.ParseEnvelope(b, maxRootEnvelope)
		if err != nil {
			return nil, fmt.Errorf("agent: stored trust root %d: %w", i, err)
		}
		envs[i] = env
	}
	first, err := crypto.ParseRoot(envs[0])
	if err != nil {
		return nil, fmt.Errorf("agent: initial trust root: %w", err)
	}
	if _, err := crypto.VerifyInitialRoot(envs[0], first.Expires.Add(-time.Second)); err != nil {
		return nil, fmt.Errorf("agent: initial trust root: %w", err)
	}
	root, err := crypto.WalkRoots(first, envs[1:], now)
	if err != nil {
		return nil, fmt.Errorf("agent: trust root chain: %w", err)
	}
	return root, nil
}

// rootsAfter returns the stored roots of versions above v.
func rootsAfter(chain [][]byte, v uint64) [][]byte {
	var out [][]byte
	for _, b := range chain {
		env, err := crypto.ParseEnvelope(b, maxRootEnvelope)
		if err != nil {
			continue
		}
		r, err := crypto.ParseRoot(env)
		if err != nil || r.Version <= v {
			continue
		}
		out = append(out, b)
	}
	return out
}

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
		if v := rootVersion(b); v > have && v <= now {
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

func rootVersion(b []byte) uint64 {
	env, err := crypto.ParseEnvelope(b, maxRootEnvelope)
	if err != nil {
		return 0
	}
	r, err := crypto.ParseRoot(env)
	if err != nil {
		return 0
	}
	return r.Version
}
