package exchange

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/crypto"
)

// TestPlainDeviceServesWhatItAssembles runs real exchanges: a seed
// (ciphertext, its uplink capped so that the assembly takes seconds), a
// plaintext-only device assembling the release from it, and neighbours
// that reach the seed only through the device (or not at all). (a) A
// neighbour fetching while the device assembles gets every chunk block
// from it, most before the device is done: served from the blocks just
// fetched and then from staging. (b) The device's pack store holds no
// chunk block, but the index pages. (c) A file changed in staging is not
// served: its blocks are not offered, and a neighbour that also sees the
// seed gets them there, every block the publisher's.
func TestPlainDeviceServesWhatItAssembles(t *testing.T) {
	const channel = "meshota/test"
	secret := crypto.ChannelSecret{7}
	srcDir := t.TempDir()
	r := rand.NewChaCha8([32]byte{3})
	for _, name := range []string{"a", "b"} {
		data := make([]byte, 3<<20)
		r.Read(data)
		if err := os.WriteFile(filepath.Join(srcDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	seed := newPeerWith(t, newStore(), Config{Cap: Rate{Up: 2 << 20}, StallTimeout: time.Second})
	rel, err := content.Publish(t.Context(), seed.bs, content.PublishOptions{Channel: channel, Secret: &secret, Source: srcDir})
	if err != nil {
		t.Fatal(err)
	}
	var maps content.ChunkMaps
	packs := newStore()
	dev := newPeerWith(t, packs, Config{Plain: &maps, StallTimeout: time.Second})
	near := newPeer(t, newStore(), nil) // reaches the release only through dev
	link(t, dev, seed)
	link(t, near, dev)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	x, err := content.OpenIndex(ctx, packs, dev.ex, rel.IndexRoot, &rel.Key, channel)
	if err != nil {
		t.Fatal(err)
	}
	staging := filepath.Join(t.TempDir(), "staging")
	sm, err := content.NewStagingMap(ctx, x, staging, nil)
	if err != nil {
		t.Fatal(err)
	}
	maps.Add(sm)
	var chunks []cid.Cid
	seen := map[cid.Cid]bool{}
	for _, c := range rel.Index.Chunks {
		if !seen[c.CID] {
			seen[c.CID] = true
			chunks = append(chunks, c.CID)
		}
	}

	var assembled time.Time
	var wg sync.WaitGroup
	var aerr error
	wg.Go(func() {
		_, aerr = content.Assemble(ctx, packs, dev.ex, x, staging, content.AssembleOptions{PlaintextOnly: true, Staged: sm})
		assembled = time.Now()
	})
	// (a) near asks for every chunk while dev assembles.
	var got []time.Time
	for b := range near.ex.GetBlocks(ctx, chunks) {
		checkPublisher(t, seed, b)
		got = append(got, time.Now())
	}
	wg.Wait()
	if aerr != nil {
		t.Fatalf("Assemble: %v", aerr)
	}
	if len(got) != len(chunks) {
		t.Fatalf("neighbour got %d of %d chunk blocks", len(got), len(chunks))
	}
	early := 0
	for _, at := range got {
		if at.Before(assembled) {
			early++
		}
	}
	t.Logf("neighbour got %d of %d chunk blocks from the device before its assembly ended", early, len(chunks))
	if early == 0 {
		t.Fatal("no chunk block served while the device assembled")
	}
	// (b) No chunk block in the device's pack store; the index is there.
	for _, c := range chunks {
		if has, _ := packs.Has(ctx, c); has {
			t.Fatalf("chunk block %s stored on a plaintext-only device", c)
		}
	}
	if has, _ := packs.Has(ctx, rel.IndexRoot); !has {
		t.Fatal("index root not stored")
	}
	// (c) Change file a in staging: its first chunk is not served; a neighbour that sees the seed
	// too gets it there.
	first := rel.Index.Chunks[rel.Index.Entries[indexOf(t, rel, "a")].FirstChunk].CID
	// Forget the blocks held in memory, as recentPlain blocks later.
	dev.ex.plain.mu.Lock()
	clear(dev.ex.plain.recent[:])
	dev.ex.plain.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(staging, "a"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff, 0x00, 0xff}, 10); err != nil {
		t.Fatal(err)
	}
	f.Close()
	other := newPeerWith(t, newStore(), Config{Seeds: []peer.ID{seed.h.ID()}, StallTimeout: time.Second})
	link(t, other, dev)
	link(t, other, seed)
	n := 0
	for b := range other.ex.GetBlocks(ctx, chunks) {
		checkPublisher(t, seed, b)
		n++
	}
	if n != len(chunks) {
		t.Fatalf("second neighbour got %d of %d chunk blocks", n, len(chunks))
	}
	// Had the neighbour picked the seed for that block, the device has
	// not read the file yet: a read finds the change.
	if _, err := dev.ex.plain.Get(ctx, first); err == nil {
		t.Fatal("the changed file's chunk is served")
	}
	if has, _ := sm.Has(ctx, first); has {
		t.Fatal("the changed file's chunk is still offered")
	}
	if tr := other.ex.Traffic(); tr.FromSeed == 0 {
		t.Fatalf("second neighbour got nothing from the seed (%+v): the changed chunk came from the device", tr)
	}
}

func indexOf(t *testing.T, rel *content.Release, path string) int {
	t.Helper()
	for i, e := range rel.Index.Entries {
		if e.Path == path {
			return i
		}
	}
	t.Fatalf("no entry %q", path)
	return 0
}

func checkPublisher(t *testing.T, seed *peerNode, b blocks.Block) {
	t.Helper()
	want, err := seed.bs.Get(t.Context(), b.Cid())
	if err != nil || !bytes.Equal(want.RawData(), b.RawData()) {
		t.Fatalf("block %s is not the publisher's (%v)", b.Cid(), err)
	}
}
