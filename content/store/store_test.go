package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/crypto"
)

const channel = "meshota/test/store"

// testBackend is the backend the tests run against; TestBackends re-runs
// the pin/GC test on every backend.
var testBackend = Pack

// testPackTarget is the pack size of test stores: a release spans several.
const testPackTarget = 256 << 10

var secret = crypto.ChannelSecret{42}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{Backend: testBackend})
	if err != nil {
		t.Fatal(err)
	}
	if pd, ok := s.ds.(*packDir); ok {
		pd.packTarget = testPackTarget // many packs: rolls, scans and compaction
	}
	return s
}

// publishFiles writes files into a fresh source tree and publishes it.
func publishFiles(t testing.TB, s *Store, files map[string][]byte) *content.Release {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rel, err := content.Publish(context.Background(), s.Blockstore(), content.PublishOptions{Channel: channel, Secret: &secret, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

func allKeys(t testing.TB, s *Store) map[cid.Cid]bool {
	t.Helper()
	ch, err := s.Blockstore().AllKeysChan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[cid.Cid]bool{}
	for c := range ch {
		out[c] = true
	}
	return out
}

func TestPinAndGC(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 1))
	s := openStore(t, t.TempDir())
	defer s.Close()
	shared := randBytes(r, 600_000)
	var rels []*content.Release
	var extras []blocks.Block // a keyring block per release, outside its block list
	for i := range 3 {
		rel := publishFiles(t, s, map[string][]byte{"shared": shared, "own": randBytes(r, 300_000+i)})
		rels = append(rels, rel)
		data := []byte(fmt.Sprintf("keyring of release %d", i))
		extra, _ := blocks.NewBlockWithCid(data, content.RawCID(data))
		extras = append(extras, extra)
		if err := s.Blockstore().Put(ctx, extra); err != nil {
			t.Fatal(err)
		}
		if err := s.Pin(ctx, Pin{Channel: channel, Sequence: uint64(i + 1), BlockList: rel.BlockListRoot, Extra: []cid.Cid{extra.Cid()}}); err != nil {
			t.Fatal(err)
		}
	}
	stray := blocks.NewBlock([]byte("not in any release"))
	s.Blockstore().Put(ctx, stray)
	lists := make([]*content.BlockList, 3)
	for i, rel := range rels {
		l, err := content.ReadBlockList(ctx, s.Blockstore(), rel.BlockListRoot)
		if err != nil {
			t.Fatal(err)
		}
		lists[i] = l
	}
	before := allKeys(t, s)
	st, err := s.GC(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	after := allKeys(t, s)
	if st.Unpinned != 1 {
		t.Errorf("unpinned %d, want 1 (keep current and previous)", st.Unpinned)
	}
	keep := map[cid.Cid]bool{extras[1].Cid(): true, extras[2].Cid(): true}
	if !after[extras[1].Cid()] || !after[extras[2].Cid()] {
		t.Error("GC removed a retained release's extra (keyring) block")
	}
	if after[extras[0].Cid()] {
		t.Error("GC kept the extra block of an unpinned release")
	}
	for _, l := range lists[1:] {
		for _, c := range l.All() {
			keep[c] = true
			if !after[c] {
				t.Errorf("GC removed %s of a retained release", c)
			}
		}
	}
	removed := 0
	for c := range before {
		if !keep[c] {
			removed++
			if after[c] {
				t.Errorf("GC kept %s, which no retained release needs", c)
			}
		}
	}
	if removed != st.Removed || removed < 3 {
		t.Errorf("GC removed %d blocks, expected %d (and at least release 1's own blocks and the stray)", st.Removed, removed)
	}
	pins, _ := s.Pins()
	if len(pins) != 2 || pins[0].Sequence != 2 || pins[1].Sequence != 3 {
		t.Errorf("pins after GC = %+v", pins)
	}
	// The collected store reopens with exactly the kept blocks.
	s.Close()
	s = openStore(t, s.dir)
	defer s.Close()
	checkBlocks(t, s, after)
	// Release 3 still assembles from the store alone.
	x, err := content.OpenIndex(ctx, s.Blockstore(), content.StoreSource{Getter: s.Blockstore()}, rels[2].IndexRoot, &rels[2].Key, channel)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := content.Assemble(ctx, s.Blockstore(), content.StoreSource{Getter: s.Blockstore()}, x, filepath.Join(t.TempDir(), "stage"), content.AssembleOptions{}); err != nil {
		t.Fatal(err)
	}
}

// checkBlocks fails unless s holds exactly want, each block intact.
func checkBlocks(t *testing.T, s *Store, want map[cid.Cid]bool) {
	t.Helper()
	if got := allKeys(t, s); len(got) != len(want) {
		t.Errorf("%d blocks in the store, want %d", len(got), len(want))
	}
	for c := range want {
		b, err := s.Blockstore().Get(context.Background(), c)
		if err != nil || content.VerifyBlock(c, b.RawData()) != nil {
			t.Errorf("block %s unreadable: %v", c, err)
		}
	}
}

// TestGCFreesPacks: releases without shared blocks, pinned in turn; GC
// of the oldest frees the packs holding its blocks, and the store
// reopens with every block of the kept releases.
func TestGCFreesPacks(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(4, 4))
	s := openStore(t, t.TempDir())
	defer s.Close()
	if _, ok := s.ds.(*packDir); !ok {
		t.Skip("pack backend only")
	}
	var sizes []int64
	for i := range 3 {
		before := packBytes(t, s)
		rel := publishFiles(t, s, map[string][]byte{"own": randBytes(r, 1_000_000)})
		sizes = append(sizes, packBytes(t, s)-before)
		if err := s.Pin(ctx, Pin{Channel: channel, Sequence: uint64(i + 1), BlockList: rel.BlockListRoot}); err != nil {
			t.Fatal(err)
		}
	}
	live := map[cid.Cid]bool{}
	before := packBytes(t, s)
	st, err := s.GC(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for c := range allKeys(t, s) {
		live[c] = true
	}
	after := packBytes(t, s)
	// Freed also counts the tombstones GC wrote before compacting.
	if before-after < sizes[0]*3/4 || st.Freed < before-after {
		t.Errorf("GC freed %d bytes (packs %d -> %d); release 1 took %d", st.Freed, before, after, sizes[0])
	}
	s.Close()
	s = openStore(t, s.dir)
	defer s.Close()
	checkBlocks(t, s, live)
}

func packBytes(t *testing.T, s *Store) int64 {
	t.Helper()
	return storedSize(t, s.ds.(*packDir))
}

func TestGCRefusesWithoutBlockList(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	defer s.Close()
	rel := publishFiles(t, s, map[string][]byte{"f": randBytes(rand.New(rand.NewPCG(2, 2)), 100_000)})
	if err := s.Pin(ctx, Pin{Channel: channel, Sequence: 1, BlockList: rel.BlockListRoot}); err != nil {
		t.Fatal(err)
	}
	n := len(allKeys(t, s))
	s.Blockstore().DeleteBlock(ctx, rel.BlockListRoot)
	if _, err := s.GC(ctx, 0); !errors.Is(err, content.ErrBlockMissing) {
		t.Fatalf("GC = %v, want ErrBlockMissing", err)
	}
	if got := len(allKeys(t, s)); got != n-1 {
		t.Errorf("GC deleted blocks although a pinned block list was missing (%d -> %d)", n-1, got)
	}
	if err := s.Unpin(channel, 7); !errors.Is(err, ErrNotPinned) {
		t.Errorf("Unpin of unknown = %v", err)
	}
}

func TestReopenKeepsBlocksAndPins(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	rel := publishFiles(t, s, map[string][]byte{"f": randBytes(rand.New(rand.NewPCG(3, 3)), 700_000)})
	s.Pin(ctx, Pin{Channel: channel, Sequence: 1, BlockList: rel.BlockListRoot})
	s.Close()
	s = openStore(t, dir)
	defer s.Close()
	if pins, err := s.Pins(); err != nil || len(pins) != 1 {
		t.Fatalf("pins after reopen = %v, %v", pins, err)
	}
	l, err := content.ReadBlockList(ctx, s.Blockstore(), rel.BlockListRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range l.All() {
		if has, _ := s.Blockstore().Has(ctx, c); !has {
			t.Errorf("block %s lost across reopen", c)
		}
	}
}

// countingSource records every block it delivers.
type countingSource struct {
	src content.BlockSource
	mu  sync.Mutex
	got map[cid.Cid]int
}

func (s *countingSource) GetBlocks(ctx context.Context, cids []cid.Cid) <-chan blocks.Block {
	in := s.src.GetBlocks(ctx, cids)
	out := make(chan blocks.Block)
	go func() {
		defer close(out)
		for b := range in {
			select {
			case out <- b:
				s.mu.Lock()
				s.got[b.Cid()]++
				s.mu.Unlock()
			case <-ctx.Done():
				for range in {
				}
				return
			}
		}
	}()
	return out
}

// TestPublishIntoPacks: publishing into a pack store reuses block buffers
// once their batch is stored; every block must still be stored whole.
func TestPublishIntoPacks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	r := rand.New(rand.NewPCG(5, 6))
	rel := publishFiles(t, s, map[string][]byte{"a": randBytes(r, 24<<20), "b": randBytes(r, 3<<20)})
	if n := len(rel.Index.Chunks); n < 3*32 {
		t.Fatalf("%d chunks: the test wants several batches of 32", n)
	}
	s.Close()
	s = openStore(t, dir) // read back from the packs, not from memory
	defer s.Close()
	for _, c := range rel.Index.Chunks {
		b, err := s.Blockstore().Get(ctx, c.CID)
		if err != nil {
			t.Fatal(err)
		}
		if err := content.VerifyBlock(c.CID, b.RawData()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPreparedBlocks: blocks whose record checksum Publish's workers
// computed (PrepareBlock) are stored exactly as blocks the store
// checksums itself (the two stores' packs are byte for byte the same),
// read back after a reopen that checks every value of the newest pack,
// and a block already present is skipped as boxo's PutMany does. A
// prepared checksum is trusted: a wrong one makes the record invalid, and
// the reopen cuts it like a torn tail.
func TestPreparedBlocks(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 8))
	var bs []blocks.Block
	for i := range 40 {
		data := randBytes(r, 1000+i*7919)
		b, err := blocks.NewBlockWithCid(data, content.RawCID(data))
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	open := func(dir string) *Store {
		s, err := Open(dir, Options{Backend: Pack}) // one pack: the reopen checks every value
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	plainDir, prepDir := t.TempDir(), t.TempDir()
	plain, prep := open(plainDir), open(prepDir)
	pb := prep.Blockstore().(interface {
		PrepareBlock(blocks.Block) blocks.Block
	})
	var prepared []blocks.Block
	for i, b := range bs {
		if i%3 != 0 { // a mix: some computed by the store
			b = pb.PrepareBlock(b)
		}
		prepared = append(prepared, b)
	}
	for i := 0; i < len(bs); i += 16 {
		if err := plain.Blockstore().PutMany(ctx, bs[i:min(i+16, len(bs))]); err != nil {
			t.Fatal(err)
		}
		if err := prep.Blockstore().PutMany(ctx, prepared[i:min(i+16, len(bs))]); err != nil {
			t.Fatal(err)
		}
	}
	size := packBytes(t, prep)
	if err := prep.Blockstore().PutMany(ctx, []blocks.Block{prepared[1], prepared[2]}); err != nil {
		t.Fatal(err)
	}
	if n := packBytes(t, prep); n != size {
		t.Fatalf("blocks already present were appended again: %d bytes, then %d", size, n)
	}
	plain.Close()
	prep.Close()
	a, _ := os.ReadFile(filepath.Join(plainDir, "packs", packName(1)))
	b, _ := os.ReadFile(filepath.Join(prepDir, "packs", packName(1)))
	if len(a) == 0 || string(a) != string(b) {
		t.Fatalf("packs differ: %d and %d bytes", len(a), len(b))
	}
	prep = open(prepDir)
	for _, b := range bs {
		got, err := prep.Blockstore().Get(ctx, b.Cid())
		if err != nil || string(got.RawData()) != string(b.RawData()) {
			t.Fatalf("block %s after reopen: %v", b.Cid(), err)
		}
	}
	// A wrong prepared checksum: that record and what follows it are cut.
	bad := pb.PrepareBlock(bs[0]).(checkedBlock)
	bad.crc++
	extra := randBytes(r, 5000)
	after, _ := blocks.NewBlockWithCid(extra, content.RawCID(extra))
	prep.Close()
	prep = open(t.TempDir())
	pb = prep.Blockstore().(interface {
		PrepareBlock(blocks.Block) blocks.Block
	})
	if err := prep.Blockstore().PutMany(ctx, []blocks.Block{bs[1], pb.PrepareBlock(bs[2])}); err != nil {
		t.Fatal(err)
	}
	if err := prep.Blockstore().PutMany(ctx, []blocks.Block{bad, after}); err != nil {
		t.Fatal(err)
	}
	dir := prep.dir
	prep.Close()
	prep = open(dir)
	defer prep.Close()
	for i, want := range []bool{false, true, true, false} {
		c := []cid.Cid{bs[0].Cid(), bs[1].Cid(), bs[2].Cid(), after.Cid()}[i]
		if has, _ := prep.Blockstore().Has(ctx, c); has != want {
			t.Errorf("block %d present %v after reopen, want %v", i, has, want)
		}
	}
}

func TestBackends(t *testing.T) {
	for _, b := range []Backend{Pack, Flat, LevelDB} {
		t.Run(strconv.Itoa(int(b)), func(t *testing.T) {
			old := testBackend
			testBackend = b
			defer func() { testBackend = old }()
			TestPinAndGC(t)
			TestReopenKeepsBlocksAndPins(t)
		})
	}
}

// TestDefaultDetectsLayout: the default backend opens a store an older
// version wrote with the flat layout as flat (its blocks readable), and a
// new or pack store as packs.
func TestDefaultDetectsLayout(t *testing.T) {
	tests := []struct {
		name    string
		created Backend // by an earlier Open; Default: none
		want    string  // datastore type
	}{
		{"new store", Default, "*store.packDir"},
		{"pack store", Pack, "*store.packDir"},
		{"flat store of an older version", Flat, "*store.flatDir"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var rel *content.Release
			if tc.created != Default {
				s, err := Open(dir, Options{Backend: tc.created})
				if err != nil {
					t.Fatal(err)
				}
				rel = publishFiles(t, s, map[string][]byte{"f": randBytes(rand.New(rand.NewPCG(8, 8)), 300_000)})
				s.Close()
			}
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := fmt.Sprintf("%T", s.ds); got != tc.want {
				t.Errorf("opened %s, want %s", got, tc.want)
			}
			if rel != nil {
				if _, err := content.ReadBlockList(context.Background(), s.Blockstore(), rel.BlockListRoot); err != nil {
					t.Errorf("blocks of the existing store unreadable: %v", err)
				}
			}
		})
	}
}
