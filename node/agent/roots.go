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

// fetchRoots asks p for the roots after ours, adopts those that verify,
// and offers the manifest that needed them again.
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
	cur := a.trusted.Root
	adopted := 0
	for _, b := range chain {
		env, err := crypto.ParseEnvelope(b, maxRootEnvelope)
		if err != nil {
			break
		}
		next, err := crypto.UpdateRoot(cur, env)
		if err != nil {
			a.log.Warn("trust root update refused", "peer", p, "err", err)
			break
		}
		cur = next
		a.st.Roots = append(a.st.Roots, b)
		adopted++
	}
	if adopted == 0 {
		a.mu.Unlock()
		return
	}
	if cur.Expires.Before(a.cfg.Now()) {
		a.st.Roots = a.st.Roots[:len(a.st.Roots)-adopted]
		a.mu.Unlock()
		a.log.Warn("newest trust root offered is expired; keeping ours", "peer", p)
		return
	}
	a.trusted.Root = cur
	err = a.st.save(a.cfg.StateDir)
	a.mu.Unlock()
	if err != nil {
		a.log.Error("cannot save state", "err", err)
		return
	}
	a.log.Info("trust root updated", "version", cur.Version)
	a.offer(ctx, manifest, p)
}
