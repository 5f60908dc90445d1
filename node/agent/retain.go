package agent

import (
	"context"

	"github.com/meshota/meshota/content/store"
	"github.com/meshota/meshota/node/bundle"
	"github.com/meshota/meshota/protocol"
)

// retain pins the release of m (its block list, and its keyring, which the
// block list does not name) and collects blocks no kept release needs.
// Failures are logged, not fatal: they cost disk, not correctness.
func (a *Agent) retain(ctx context.Context, m *protocol.Manifest) {
	if a.cfg.Retain == nil {
		return
	}
	keyring, err := bundle.KeyringBlocks(ctx, a.cfg.Store, m, a.cfg.Limits)
	if err != nil {
		a.log.Warn("cannot pin the release's keyring", "err", err)
	}
	if err := a.cfg.Retain.Pin(ctx, store.Pin{Channel: m.Channel, Sequence: m.Sequence, BlockList: m.Blocks, Extra: keyring}); err != nil {
		a.log.Warn("cannot pin the release", "sequence", m.Sequence, "err", err)
		return
	}
	st, err := a.cfg.Retain.GC(ctx, store.DefaultKeep)
	if err != nil {
		a.log.Warn("garbage collection failed", "err", err)
		return
	}
	a.log.Debug("garbage collected", "removed", st.Removed, "kept", st.Kept)
}
