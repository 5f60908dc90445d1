package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/node/install"
	"github.com/meshota/meshota/node/policy"
	"github.com/meshota/meshota/protocol"
)

// retryDelay is how long the worker waits before retrying a release whose
// fetch failed for want of peers or blocks.
const retryDelay = 2 * time.Second

// work runs one release job at a time: always the latest accepted
// manifest. A newer manifest cancels the fetch of an older one, but never
// an install in progress (hooks are not interrupted midway).
func (a *Agent) work(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.wake:
		}
		for {
			a.mu.Lock()
			data := a.st.Manifest
			a.mu.Unlock()
			if data == nil {
				break
			}
			jobCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- a.process(jobCtx, ctx, data) }()
			var err error
			select {
			case err = <-done:
			case <-a.wake:
				cancel()
				<-done
				continue // start over with the newest manifest
			case <-ctx.Done():
				cancel()
				<-done
				return nil
			}
			cancel()
			if err == nil {
				break
			}
			a.log.Warn("release not complete; retrying", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-a.wake:
			case <-time.After(retryDelay):
			}
		}
	}
}

// process brings the device to the release of the signed manifest data.
// fetchCtx ends when a newer manifest arrives; runCtx only at shutdown. A
// nil error means there is nothing more to do for this manifest.
func (a *Agent) process(fetchCtx, runCtx context.Context, data []byte) error {
	m, err := protocol.DecodeManifest(data, a.cfg.Limits)
	if err != nil {
		return fmt.Errorf("stored manifest unreadable: %w", err) // cannot happen: it was validated
	}
	a.mu.Lock()
	inst, failed := a.st.Installed, a.st.Failed
	a.mu.Unlock()
	switch {
	case inst != nil && inst.Sequence >= m.Sequence:
		return nil
	case failed == m.Sequence:
		return nil
	case inst != nil && inst.index().Equals(m.Index):
		// Same content under a newer manifest (a widened rollout, say).
		a.setInstalled(m, data, "")
		a.report(runCtx, m, protocol.StateInstalled, nil, Traffic{}, 0)
		return nil
	}
	if !policy.InRollout(m.Channel, a.id.String(), uint32(m.RolloutBasisPoints)) {
		a.log.Info("outside the rollout; fetching blocks to serve peers", "sequence", m.Sequence, "rollout_bp", m.RolloutBasisPoints)
		return a.prefetch(fetchCtx, m)
	}
	return a.install(fetchCtx, runCtx, m, data)
}

// prefetch stores every block of the release, found through its cleartext
// block list: no key is needed to help the fleet. It also holds the
// keyring, whole when it is small (every device's shard: peers that see
// only other devices need theirs), else just this device's shard.
func (a *Agent) prefetch(ctx context.Context, m *protocol.Manifest) error {
	bl, err := content.ReadBlockList(ctx, a.getter(), m.Blocks)
	if err != nil {
		return err
	}
	if err := a.checkSpace(ctx, m, bl.All()); err != nil {
		return err
	}
	if err := a.ensure(ctx, bl.All()); err != nil {
		return err
	}
	if err := a.prefetchKeyring(ctx, m); err != nil {
		return err
	}
	a.retain(ctx, m)
	return nil
}

// prefetchWholeKeyring is the largest keyring (in shards) that every
// device keeps whole: 16 shards hold about a thousand devices.
const prefetchWholeKeyring = 16

func (a *Agent) prefetchKeyring(ctx context.Context, m *protocol.Manifest) error {
	rb, err := a.getter().Get(ctx, m.Keyring.Root)
	if err != nil {
		return err
	}
	root, err := protocol.ParseKeyringRoot(rb.RawData(), m, a.cfg.Limits)
	if err != nil {
		return err
	}
	if root.NumShards() > prefetchWholeKeyring {
		_, own := root.ShardFor(a.id)
		return a.ensure(ctx, []cid.Cid{own})
	}
	shards := make([]cid.Cid, root.NumShards())
	for i := range shards {
		shards[i] = root.ShardCID(uint32(i))
	}
	return a.ensure(ctx, shards)
}

func (a *Agent) install(fetchCtx, runCtx context.Context, m *protocol.Manifest, data []byte) error {
	start := time.Now()
	t0 := a.traffic()
	a.report(runCtx, m, protocol.StateDownloading, nil, Traffic{}, 0)
	x, err := a.openIndex(fetchCtx, m)
	if errors.Is(err, protocol.ErrNotInKeyring) || errors.Is(err, errCannotOpen) {
		// Revoked, never enrolled, or sealed for another key: retrying
		// will not help; only a new manifest can.
		a.fail(runCtx, m, protocol.StateFailed, err, t0, start)
		return nil
	}
	if err != nil {
		return err
	}
	rel := install.Release{Channel: m.Channel, Sequence: m.Sequence, Version: m.Version}
	// Hold what peers outside the rollout, or behind this device, need
	// besides the content: the block list and the keyring.
	bl, err := content.ReadBlockList(fetchCtx, a.getter(), m.Blocks)
	if err != nil {
		return err
	}
	if err := a.checkSpace(fetchCtx, m, bl.All()); err != nil {
		return err
	}
	if err := a.prefetchKeyring(fetchCtx, m); err != nil {
		return err
	}
	if err := a.assemble(fetchCtx, x, rel); err != nil {
		if fetchCtx.Err() == nil && isPermanent(err) {
			a.fail(runCtx, m, protocol.StateFailed, err, t0, start)
			return nil
		}
		return err
	}
	if err := a.cfg.Install.Place(rel); err != nil {
		return err
	}
	if err := a.beforeActivate(runCtx, x, rel); err != nil {
		return err
	}
	err = a.cfg.Install.Activate(runCtx, rel)
	switch {
	case err == nil:
		a.setInstalled(m, data, rel.Name())
		a.retain(runCtx, m)
		a.dropChunkBlocks(runCtx, bl)
		a.log.Info("release installed", "sequence", m.Sequence, "version", m.Version, "took", time.Since(start).Round(time.Millisecond))
		a.report(runCtx, m, protocol.StateInstalled, nil, a.traffic().minus(t0), time.Since(start))
		return nil
	case errors.Is(err, install.ErrHealthCheck):
		a.fail(runCtx, m, protocol.StateRolledBack, err, t0, start)
		return nil
	case errors.Is(err, install.ErrInstallHook):
		a.fail(runCtx, m, protocol.StateFailed, err, t0, start)
		return nil
	default:
		return err
	}
}

// isPermanent tells content errors that refetching cannot fix (a release
// that is wrong as signed) from transient ones.
func isPermanent(err error) bool {
	return errors.Is(err, content.ErrUnsafePath) || errors.Is(err, content.ErrDuplicatePath) ||
		errors.Is(err, content.ErrUnsupportedFile) || errors.Is(err, content.ErrIndexKey) ||
		errors.Is(err, content.ErrIndexMalformed) || errors.Is(err, content.ErrChunkCorrupt)
}

func (a *Agent) fail(ctx context.Context, m *protocol.Manifest, s protocol.State, err error, t0 Traffic, start time.Time) {
	a.log.Error("release failed", "sequence", m.Sequence, "version", m.Version, "state", s, "err", err)
	a.mu.Lock()
	a.st.Failed = m.Sequence
	serr := a.st.save(a.cfg.StateDir)
	a.mu.Unlock()
	if serr != nil {
		a.log.Error("cannot save state", "err", serr)
	}
	a.report(ctx, m, s, err, a.traffic().minus(t0), time.Since(start))
}

// setInstalled records m (signed data) as installed in release directory
// dir; dir "" means the installed release's directory, whose content m
// has too.
func (a *Agent) setInstalled(m *protocol.Manifest, data []byte, dir string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.st.Installed
	switch {
	case old != nil && dir == "":
		dir = old.Dir
	case old != nil && old.Dir != dir:
		a.st.Previous = old
	}
	a.st.Installed = &installedRelease{Sequence: m.Sequence, Version: m.Version, Index: m.Index.Bytes(), Manifest: data, Dir: dir}
	if err := a.st.save(a.cfg.StateDir); err != nil {
		a.log.Error("cannot save state", "err", err)
	}
}

func (a *Agent) traffic() Traffic {
	if a.cfg.Traffic == nil {
		return Traffic{}
	}
	return a.cfg.Traffic()
}

func (t Traffic) minus(o Traffic) Traffic {
	return Traffic{LAN: t.LAN - o.LAN, Seed: t.Seed - o.Seed, Peer: t.Peer - o.Peer}
}
