package agent_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/node/exchange"
	"github.com/meshota/meshota/node/host"
	"github.com/meshota/meshota/node/install"
	"github.com/meshota/meshota/node/publisher"
	"github.com/meshota/meshota/protocol"
)

// TestPlaintextOnlyDevices runs real agents that keep plaintext only,
// behind a seed that sends each block once per site (its uplink capped,
// so that the download takes seconds). (a) Every device installs the
// release byte for byte, the seed sends about one copy of it, and the
// devices serve each other chunk blocks while they are still assembling
// (from the blocks just fetched and from staging). (b) No device's pack
// store holds a chunk block of the release. (c) A file changed in an
// installed tree is not served (dropped, logged); a late device, on its
// own site, installs anyway.
func TestPlaintextOnlyDevices(t *testing.T) {
	const n = 5
	var lateMu sync.Mutex
	late := map[peer.ID]bool{}
	siteOf := func(p peer.ID) string {
		lateMu.Lock()
		defer lateMu.Unlock()
		if late[p] {
			return "late"
		}
		return "site"
	}
	f := newFleetEx(t, n, func(c *exchange.Config) {
		c.OncePerSite, c.SiteOf, c.Cap = time.Minute, siteOf, exchange.Rate{Up: 2 << 20}
	}, func(c *exchange.Config) {
		c.Plain = &content.ChunkMaps{}
	})
	tap := newLogTap()
	for i, d := range f.devices {
		if i == 0 {
			f.startLogged(d, "true", slog.New(tap))
		} else {
			f.start(d, "true")
		}
		connect(t, d.n, f.seedN)
		for _, o := range f.devices[:i] {
			connect(t, d.n, o.n)
		}
	}
	// Enrolled now, started after the others installed.
	lateDev := f.newDevice(true)
	lateDev.n.ex.SetSeeds([]peer.ID{f.seedN.h.ID()})
	lateMu.Lock()
	late[lateDev.n.h.ID()] = true
	lateMu.Unlock()
	src := writeTree(t, 5, 6<<20)
	r := f.ship(f.pub.Publish(f.ctx, publisher.Request{Channel: f.channel, Version: "1.0.0", Source: src}))
	rel := install.Release{Channel: f.channel, Sequence: r.Sequence, Version: "1.0.0"}

	// Bytes each device served while its staging directory existed.
	var whileAssembling atomic.Uint64
	stop := make(chan struct{})
	var poll sync.WaitGroup
	poll.Go(func() {
		last := make([]uint64, n)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			for i, d := range f.devices {
				served := d.n.ex.Traffic().Served
				// Stat after reading: staging there now was there then.
				if _, err := os.Stat(d.inst.StagingDir(rel)); err == nil {
					whileAssembling.Add(served - last[i])
				}
				last[i] = served
			}
		}
	})
	waitFor(t, f.devices, r.Sequence, protocol.StateInstalled, 120*time.Second)
	close(stop)
	poll.Wait()

	var fromSeed, received uint64
	for _, d := range f.devices {
		sameTree(t, src, d.inst.CurrentPath())
		tr := d.n.ex.Traffic()
		fromSeed += tr.FromSeed
		received += tr.FromSeed + tr.FromLAN + tr.FromPeers
	}
	t.Logf("release %d bytes; devices received %d bytes, %d from the seed; %d served by devices while assembling",
		r.Size, received, fromSeed, whileAssembling.Load())
	// Index pages, block list and keyring are a few KiB: half a MiB is
	// chunk blocks.
	if whileAssembling.Load() < 512<<10 {
		t.Fatalf("devices served %d bytes while assembling: chunk blocks are not shared during the download", whileAssembling.Load())
	}

	// (b) The release's chunk blocks are in no device's pack store.
	bl := f.blockList(r)
	var chunks []cid.Cid
	for _, c := range bl.All() {
		if f.devices[0].n.plain.Lists(c) {
			chunks = append(chunks, c)
		}
	}
	if len(chunks) < 20 {
		t.Fatalf("the installed release's map lists %d chunk blocks", len(chunks))
	}
	for i, d := range f.devices {
		keys, err := d.n.st.Blockstore().AllKeysChan(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		stored := 0
		for c := range keys {
			stored++
			if d.n.plain.Lists(c) {
				t.Errorf("device %d stores chunk block %s", i, c)
			}
		}
		if stored == 0 {
			t.Errorf("device %d stores nothing (index, block list and keyring expected)", i)
		}
	}

	// (c) Change firmware.bin on device 0; a late device installs.
	d0 := f.devices[0]
	fw := filepath.Join(d0.inst.CurrentPath(), "firmware.bin")
	fh, err := os.OpenFile(fw, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt([]byte("changed"), 1<<20); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	f.start(lateDev, "true")
	connect(t, lateDev.n, d0.n)
	connect(t, lateDev.n, f.seedN)
	waitFor(t, []*device{lateDev}, r.Sequence, protocol.StateInstalled, 120*time.Second)
	sameTree(t, src, lateDev.inst.CurrentPath())
	served, refused := 0, 0
	for _, c := range chunks {
		b, err := d0.n.plain.Get(f.ctx, c)
		if err != nil {
			refused++
			continue
		}
		want, _ := f.seedN.st.Blockstore().Get(f.ctx, c)
		if want == nil || !bytes.Equal(b.RawData(), want.RawData()) {
			t.Fatalf("device 0 serves %s, not the publisher's block", c)
		}
		served++
	}
	if refused == 0 || served == 0 {
		t.Fatalf("device 0 serves %d chunk blocks and refuses %d: want the changed file's refused, VERSION's served", served, refused)
	}
	tap.waitFor(t, "the changed file logged", 10*time.Second, func(r logRecord) bool {
		return strings.Contains(r.msg, "an installed file changed") && r.attrs["path"] == filepath.Join(d0.inst.ReleaseDir(rel), "firmware.bin")
	})

	// (d) A second release, 64 KiB changed in the middle: the devices
	// copy the rest from their installed trees (device 0, whose file
	// changed, fetches it), serve both releases, and store no chunk.
	src2 := t.TempDir()
	data, err := os.ReadFile(filepath.Join(src, "firmware.bin"))
	if err != nil {
		t.Fatal(err)
	}
	copy(data[3<<20:], bytes.Repeat([]byte{0xa5}, 64<<10))
	os.WriteFile(filepath.Join(src2, "firmware.bin"), data, 0o644)
	os.WriteFile(filepath.Join(src2, "VERSION"), []byte("2"), 0o644)
	seedBefore := f.seedN.ex.Traffic().Served
	r2 := f.ship(f.pub.Publish(f.ctx, publisher.Request{Channel: f.channel, Version: "2.0.0", Source: src2}))
	all := append(f.devices, lateDev)
	waitFor(t, all, r2.Sequence, protocol.StateInstalled, 120*time.Second)
	sent := f.seedN.ex.Traffic().Served - seedBefore
	t.Logf("release 2: the seed sent %d bytes (new: %d chunks, %d bytes)", sent, r2.Delta.NewChunks, r2.Delta.NewBytes)
	bl2 := f.blockList(r2)
	for i, d := range all {
		for _, name := range []string{"firmware.bin", "VERSION"} {
			a, _ := os.ReadFile(filepath.Join(src2, name))
			b, _ := os.ReadFile(filepath.Join(d.inst.CurrentPath(), name))
			if !bytes.Equal(a, b) {
				t.Fatalf("device %d: release 2's %s differs", i, name)
			}
		}
		listed := 0
		for _, c := range bl2.All() {
			if d.n.plain.Lists(c) {
				listed++
				if has, _ := d.n.st.Blockstore().Has(f.ctx, c); has {
					t.Errorf("device %d stores chunk block %s of release 2", i, c)
				}
			}
		}
		if listed == 0 {
			t.Errorf("device %d does not map release 2", i)
		}
	}
	if sent > 2<<20 {
		t.Fatalf("the seed sent %d bytes for a 64 KiB change: the installed trees were not copied", sent)
	}
}

// blockList reads the block list of release r from the seed.
func (f *fleet) blockList(r *publisher.Result) *content.BlockList {
	f.t.Helper()
	m, err := protocol.DecodeManifest(r.Manifest, protocol.DefaultLimits)
	if err != nil {
		f.t.Fatal(err)
	}
	bl, err := content.ReadBlockList(f.ctx, f.seedN.st.Blockstore(), m.Blocks)
	if err != nil {
		f.t.Fatal(err)
	}
	return bl
}

// TestPlaintextOnlyMapsFollowTheReleases: a plaintext-only device serves
// its current and previous releases from their trees, again after a
// restart (maps rebuilt from the state), and stops serving a release once
// it is pruned; no chunk block of any of them is stored.
func TestPlaintextOnlyMapsFollowTheReleases(t *testing.T) {
	f := newFleetEx(t, 1, nil, func(c *exchange.Config) { c.Plain = &content.ChunkMaps{} })
	d := f.devices[0]
	ctx, stop := context.WithCancel(f.ctx)
	f.startCtx(ctx, d, "true")
	connect(t, d.n, f.seedN)
	// Each release's blocks, read from the seed while it has them.
	var rels []map[cid.Cid][]byte
	var first *publisher.Result
	release := func(seed uint64, version string) {
		t.Helper()
		r := f.ship(f.pub.Publish(f.ctx, publisher.Request{Channel: f.channel, Version: version, Source: writeTree(t, seed, 1<<20)}))
		waitFor(t, f.devices, r.Sequence, protocol.StateInstalled, 60*time.Second)
		blks := map[cid.Cid][]byte{}
		for _, c := range f.blockList(r).All() {
			b, err := f.seedN.st.Blockstore().Get(f.ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			blks[c] = b.RawData()
		}
		rels = append(rels, blks)
		if first == nil {
			first = r
		}
	}
	// served checks that d serves exactly the chunk blocks of the
	// releases marked true, each the publisher's.
	served := func(when string, want ...bool) {
		t.Helper()
		for i, blks := range rels {
			n := 0
			for c, want := range blks {
				if has, _ := d.n.st.Blockstore().Has(f.ctx, c); has && d.n.plain.Lists(c) {
					t.Fatalf("%s: release %d's chunk block %s is stored", when, i+1, c)
				}
				b, err := d.n.plain.Get(f.ctx, c)
				if err != nil {
					continue
				}
				if !bytes.Equal(b.RawData(), want) {
					t.Fatalf("%s: block %s served is not the publisher's", when, c)
				}
				n++
			}
			if (n > 0) != want[i] {
				t.Fatalf("%s: release %d: %d chunk blocks served, want served = %v", when, i+1, n, want[i])
			}
		}
	}
	release(11, "1.0.0")
	release(12, "2.0.0")
	served("after two installs", true, true)

	// Restart on a new node over the same store, state and install
	// directories: the maps are rebuilt at start-up.
	stop()
	time.Sleep(200 * time.Millisecond)
	d.n.close()
	d.n = newNodeEx(t, f.ctx, host.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}, testGossip(), d.n.storeDir, f.devEx)
	d.n.ex.SetSeeds([]peer.ID{f.seedN.h.ID()})
	f.start(d, "true")
	connect(t, d.n, f.seedN)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		listed := false
		for c := range rels[0] {
			listed = listed || d.n.plain.Lists(c)
		}
		if listed || time.Now().After(deadline) {
			break
		}
	}
	// Lists may see the first map before the second is added.
	time.Sleep(100 * time.Millisecond)
	served("after a restart", true, true)

	release(13, "3.0.0")
	served("after release 3 (release 1 pruned)", false, true, true)
	if _, err := os.Stat(d.inst.ReleaseDir(install.Release{Sequence: first.Sequence, Version: "1.0.0"})); err == nil {
		t.Fatal("release 1's directory is still there")
	}
}
