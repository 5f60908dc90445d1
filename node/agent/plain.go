package agent

import (
	"context"
	"os"
	"slices"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/node/install"
	"github.com/meshota/meshota/protocol"
)

// assemble writes release x into rel's staging directory. On a
// plaintext-only device (Config.Plain) it keeps no chunk block, copies the
// chunks the installed releases share from their trees, and serves the
// chunks already in staging to its neighbours while it goes on: the seed
// sends a block about once per site, and the site's other devices fetch
// it from the device that got it, usually while that device is still
// downloading.
func (a *Agent) assemble(ctx context.Context, x *content.Index, rel install.Release) error {
	staging := a.cfg.Install.StagingDir(rel)
	opt := a.cfg.Assemble
	if a.cfg.Plain == nil {
		_, err := content.Assemble(ctx, a.cfg.Store, a.cfg.Network, x, staging, opt)
		return err
	}
	// A run killed after placing the tree (staging renamed into releases/)
	// and before recording the install left the release complete there:
	// staging is gone, and no chunk block is in the store to assemble it
	// again from, so it would all be fetched again. Check it instead.
	if dir := a.cfg.Install.ReleaseDir(rel); exists(dir) {
		err := content.VerifyStaged(ctx, x, dir)
		if err == nil {
			return nil
		}
		a.log.Warn("placed release damaged; assembling it again", "release", rel.Name(), "err", err)
	}
	sm, err := content.NewStagingMap(ctx, x, staging, a.log)
	if err != nil {
		return err
	}
	// Served until the tree is placed (renamed away from staging); then
	// the installed release's map takes over (beforeActivate).
	a.cfg.Plain.Add(sm)
	defer a.cfg.Plain.Remove(sm)
	opt.PlaintextOnly, opt.Previous, opt.Staged = true, &a.installed, sm
	st, err := content.Assemble(ctx, a.cfg.Store, a.cfg.Network, x, staging, opt)
	if err == nil {
		a.log.Debug("assembled, plaintext only", "fetched", st.Fetched, "copied", st.Copied, "kept", st.Kept)
	}
	return err
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// dropChunkBlocks, on a plaintext-only device that installed release bl,
// deletes from the store the chunk blocks an interrupted assembly left
// there (content's spill: blocks received but not yet written when a run
// stopped): the installed tree serves them now. Failures cost disk only.
func (a *Agent) dropChunkBlocks(ctx context.Context, bl *content.BlockList) {
	del, ok := a.cfg.Store.(interface {
		DeleteBlock(context.Context, cid.Cid) error
	})
	if a.cfg.Plain == nil || !ok {
		return
	}
	n := 0
	for _, c := range bl.All() {
		if !a.cfg.Plain.Lists(c) {
			continue
		}
		if has, _ := a.cfg.Store.Has(ctx, c); !has {
			continue
		}
		if err := del.DeleteBlock(ctx, c); err != nil {
			a.log.Warn("cannot delete a chunk block the installed tree serves", "block", c, "err", err)
			return
		}
		n++
	}
	if n > 0 {
		a.log.Debug("chunk blocks left by interrupted runs deleted", "blocks", n)
	}
}

// beforeActivate, on a plaintext-only device, serves the placed release
// rel from its tree, and stops serving every release Activate may delete
// (all but the current one, which becomes previous): a map is removed
// before its directory goes, so no neighbour is answered from a vanishing
// file.
func (a *Agent) beforeActivate(ctx context.Context, x *content.Index, rel install.Release) error {
	if a.cfg.Plain == nil {
		return nil
	}
	cur, err := a.cfg.Install.Current()
	if err != nil {
		return err
	}
	a.keepMaps(cur, rel.Name())
	if err := a.addMap(ctx, x, rel.Name()); err != nil {
		// Not fatal: the release installs; its chunks are not served
		// from this device until the next start.
		a.log.Warn("cannot serve the installed release from its plaintext", "release", rel.Name(), "err", err)
	}
	return nil
}

// addMap serves the chunks of release x installed in directory name.
func (a *Agent) addMap(ctx context.Context, x *content.Index, name string) error {
	m, err := content.NewChunkMap(ctx, x, a.cfg.Install.ReleaseDir(install.ParseName(name)), a.log)
	if err != nil {
		return err
	}
	a.plainMu.Lock()
	defer a.plainMu.Unlock()
	if old := a.plainMaps[name]; old != nil {
		a.cfg.Plain.Remove(old)
		a.installed.Remove(old)
	}
	a.plainMaps[name] = m
	a.cfg.Plain.Add(m)
	a.installed.Add(m)
	return nil
}

// keepMaps stops serving the installed releases not named.
func (a *Agent) keepMaps(names ...string) {
	a.plainMu.Lock()
	defer a.plainMu.Unlock()
	for name, m := range a.plainMaps {
		if slices.Contains(names, name) {
			continue
		}
		a.cfg.Plain.Remove(m)
		a.installed.Remove(m)
		delete(a.plainMaps, name)
	}
}

// loadMapsTimeout bounds opening the installed releases' indexes at
// start-up: their blocks (index pages, keyring) are pinned in the store,
// so this is local unless the store lost one.
const loadMapsTimeout = 30 * time.Second

// loadMaps, at start-up on a plaintext-only device, serves the installed
// releases (current and previous) from their trees again. A release whose
// manifest the state does not hold (written by an older version, or
// rebuilt after damage) is not served; that costs the fleet a source, not
// correctness.
func (a *Agent) loadMaps(ctx context.Context) {
	if a.cfg.Plain == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, loadMapsTimeout)
	defer cancel()
	cur, err := a.cfg.Install.Current()
	if err != nil {
		a.log.Warn("cannot read the current release", "err", err)
		return
	}
	prev, err := a.cfg.Install.Previous()
	if err != nil {
		a.log.Warn("cannot read the previous release", "err", err)
		return
	}
	a.mu.Lock()
	rels := []*installedRelease{a.st.Previous, a.st.Installed} // older first: the newest map is asked first
	a.mu.Unlock()
	for _, r := range rels {
		if r == nil || r.Manifest == nil || r.Dir == "" || (r.Dir != cur && r.Dir != prev) {
			continue
		}
		m, err := protocol.DecodeManifest(r.Manifest, a.cfg.Limits)
		if err == nil {
			var x *content.Index
			if x, err = a.openIndex(ctx, m); err == nil {
				err = a.addMap(ctx, x, r.Dir)
			}
		}
		if err != nil {
			a.log.Warn("installed release not served from its plaintext", "release", r.Dir, "err", err)
		}
	}
}
