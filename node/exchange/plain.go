package exchange

import (
	"context"
	"sync"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/content"
)

// recentPlain is how many dropped chunk blocks a plaintext-only device
// holds in memory (at most 8 MiB of 512 KiB blocks): about the window of
// blocks between the blockservice's Put and content writing their
// plaintext to staging (content's default window is 8, up to 2 × 8 in
// flight).
const recentPlain = 16

// plainStore is the blockstore of a plaintext-only device, given to both
// bitswap and the blockservice in front of it.
//
// Reads: chunk blocks of the mapped releases (installed trees, the release
// being assembled once its chunks are in staging) are sealed again from
// the plaintext and CID-checked (content.ChunkMaps); then the chunk blocks
// dropped last (recent); then the pack store (index pages, block lists,
// keyrings, spilled blocks, other releases' blocks).
//
// Writes: the blockservice Puts every block it fetched before returning
// it (boxo v0.43 blockservice.getBlocksCh) and then tells bitswap
// (NotifyNewBlocks). A chunk block of a mapped release is not stored:
// content decrypts it into staging, whose map serves it from then on.
// Until then it is held in recent, so that the server's NotifyNewBlocks
// tasks (neighbours that asked for it while it was on its way here) find
// it. Had it gone (more than recentPlain blocks later), the engine sends
// nothing for a NotifyNewBlocks task whose block is missing (its tasks
// have SendDontHave false; engine.nextEnvelope drops the entry), and a
// want-block arriving then is answered DONT_HAVE: the neighbour asks
// again on its stall timers (stallSource: QuickStall after a HAVE,
// StallTimeout otherwise), by which time staging has it. Everything
// else goes to the pack store.
type plainStore struct {
	blockstore.Blockstore // the pack store
	maps                  *content.ChunkMaps

	mu     sync.Mutex
	recent [recentPlain]blocks.Block
	next   int
}

func newPlainStore(under blockstore.Blockstore, maps *content.ChunkMaps) *plainStore {
	return &plainStore{Blockstore: under, maps: maps}
}

func (s *plainStore) remember(b blocks.Block) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.recent {
		if r != nil && r.Cid().Equals(b.Cid()) {
			return
		}
	}
	s.recent[s.next] = b
	s.next = (s.next + 1) % recentPlain
}

func (s *plainStore) recalled(c cid.Cid) blocks.Block {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.recent {
		// Compare multihashes, as the pack store and the maps key blocks.
		if r != nil && string(r.Cid().Hash()) == string(c.Hash()) {
			return r
		}
	}
	return nil
}

func (s *plainStore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if ok, _ := s.maps.Has(ctx, c); ok {
		return true, nil
	}
	if s.recalled(c) != nil {
		return true, nil
	}
	return s.Blockstore.Has(ctx, c)
}

func (s *plainStore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	if n, err := s.maps.GetSize(ctx, c); err == nil {
		return n, nil
	}
	if b := s.recalled(c); b != nil {
		return len(b.RawData()), nil
	}
	return s.Blockstore.GetSize(ctx, c)
}

func (s *plainStore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if b, err := s.maps.Get(ctx, c); err == nil {
		return b, nil // sealed for c, CID-checked
	}
	if b := s.recalled(c); b != nil {
		return blocks.NewBlockWithCid(b.RawData(), c)
	}
	return s.Blockstore.Get(ctx, c)
}

func (s *plainStore) Put(ctx context.Context, b blocks.Block) error {
	if s.maps.Lists(b.Cid()) {
		s.remember(b)
		return nil
	}
	return s.Blockstore.Put(ctx, b)
}

func (s *plainStore) PutMany(ctx context.Context, bs []blocks.Block) error {
	keep := bs[:0:0]
	for _, b := range bs {
		if s.maps.Lists(b.Cid()) {
			s.remember(b)
			continue
		}
		keep = append(keep, b)
	}
	if len(keep) == 0 {
		return nil
	}
	return s.Blockstore.PutMany(ctx, keep)
}
