package content

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// preparingMem is a memory blockstore that records which blocks went
// through PrepareBlock (as the pack store's checksum does) and marks them.
type preparingMem struct {
	blockstore.Blockstore
	mu       sync.Mutex
	prepared map[cid.Cid]bool
	stored   map[cid.Cid]bool // stored as a block PrepareBlock returned
}

type markedBlock struct{ blocks.Block }

func (s *preparingMem) PrepareBlock(b blocks.Block) blocks.Block {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prepared[b.Cid()] = true
	return markedBlock{b}
}

func (s *preparingMem) PutMany(ctx context.Context, bs []blocks.Block) error {
	s.mu.Lock()
	for _, b := range bs {
		if _, ok := b.(markedBlock); ok {
			s.stored[b.Cid()] = true
		}
	}
	s.mu.Unlock()
	return s.Blockstore.PutMany(ctx, bs)
}

func (s *preparingMem) Put(ctx context.Context, b blocks.Block) error {
	return s.PutMany(ctx, []blocks.Block{b})
}

// TestPublishPreparesBlocks: with a store that has PrepareBlock, every
// chunk block Publish stores is the one PrepareBlock returned (the pack
// store then takes the checksum its workers computed).
func TestPublishPreparesBlocks(t *testing.T) {
	src := randomSource(t, 9, 6<<20, 100_000)
	s := newPreparingMem()
	rel, err := Publish(context.Background(), s, PublishOptions{Channel: testChannel, Secret: &testSecret, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	s.check(t, rel.Index)
}

func newPreparingMem() *preparingMem {
	return &preparingMem{Blockstore: memStore(), prepared: map[cid.Cid]bool{}, stored: map[cid.Cid]bool{}}
}

// check fails t unless every chunk block of x was prepared and stored as
// the block PrepareBlock returned.
func (s *preparingMem) check(t *testing.T, x *Index) {
	t.Helper()
	for _, c := range x.Chunks {
		if !s.prepared[c.CID] || !s.stored[c.CID] {
			t.Fatalf("chunk block %s: prepared %v, stored as prepared %v", c.CID, s.prepared[c.CID], s.stored[c.CID])
		}
	}
}

// randomSource writes a release directory of files of the given sizes,
// random bytes from seed, and returns its path.
func randomSource(t *testing.T, seed uint64, sizes ...int) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, seed+1))
	for i, n := range sizes {
		if err := os.WriteFile(filepath.Join(src, string(rune('a'+i))), randBytes(r, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// TestAssemblePreparesBlocks: assembly's workers, like Publish's, call the
// store's PrepareBlock on every chunk block they verified, and the store
// is given the prepared block.
func TestAssemblePreparesBlocks(t *testing.T) {
	ctx := context.Background()
	src := randomSource(t, 11, 6<<20)
	pub := memStore()
	rel, err := Publish(ctx, pub, PublishOptions{Channel: testChannel, Secret: &testSecret, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	dev := newPreparingMem()
	if _, err := Assemble(ctx, dev, StoreSource{pub}, rel.Index, filepath.Join(t.TempDir(), "stage"), AssembleOptions{}); err != nil {
		t.Fatal(err)
	}
	dev.check(t, rel.Index)
}
