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
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	r := rand.New(rand.NewPCG(9, 10))
	os.WriteFile(filepath.Join(src, "a"), randBytes(r, 6<<20), 0o644)
	os.WriteFile(filepath.Join(src, "b"), randBytes(r, 100_000), 0o644)
	s := &preparingMem{Blockstore: memStore(), prepared: map[cid.Cid]bool{}, stored: map[cid.Cid]bool{}}
	rel, err := Publish(ctx, s, PublishOptions{Channel: testChannel, Secret: &testSecret, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rel.Index.Chunks {
		if !s.prepared[c.CID] || !s.stored[c.CID] {
			t.Fatalf("chunk block %s: prepared %v, stored as prepared %v", c.CID, s.prepared[c.CID], s.stored[c.CID])
		}
	}
}

// TestAssemblePreparesBlocks: assembly's workers, like Publish's, call the
// store's PrepareBlock on every chunk block they verified, and the store
// is given the prepared block.
func TestAssemblePreparesBlocks(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	r := rand.New(rand.NewPCG(11, 12))
	os.WriteFile(filepath.Join(src, "a"), randBytes(r, 6<<20), 0o644)
	pub := memStore()
	rel, err := Publish(ctx, pub, PublishOptions{Channel: testChannel, Secret: &testSecret, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	dev := &preparingMem{Blockstore: memStore(), prepared: map[cid.Cid]bool{}, stored: map[cid.Cid]bool{}}
	if _, err := Assemble(ctx, dev, StoreSource{pub}, rel.Index, filepath.Join(t.TempDir(), "stage"), AssembleOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range rel.Index.Chunks {
		if !dev.prepared[c.CID] || !dev.stored[c.CID] {
			t.Fatalf("chunk block %s: prepared %v, stored as prepared %v", c.CID, dev.prepared[c.CID], dev.stored[c.CID])
		}
	}
}
