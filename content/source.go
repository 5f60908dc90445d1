package content

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// BlockSource delivers blocks by CID: the local store now, boxo's
// blockservice over bitswap later (its GetBlocks has this signature). The
// channel closes when the source has delivered what it can; blocks it could
// not find are simply absent. Content never trusts a source: every block is
// verified against the CID it was asked for before use or storage, by a
// hash here unless the source marked it Verified (hashed in this process,
// by code that computed its CID from its bytes).
type BlockSource interface {
	GetBlocks(ctx context.Context, cids []cid.Cid) <-chan blocks.Block
}

// StoreSource serves blocks from a Getter such as a local blockstore.
type StoreSource struct{ Getter Getter }

// GetBlocks implements BlockSource.
func (s StoreSource) GetBlocks(ctx context.Context, cids []cid.Cid) <-chan blocks.Block {
	out := make(chan blocks.Block)
	go func() {
		defer close(out)
		for _, c := range cids {
			b, err := s.Getter.Get(ctx, c)
			if err != nil {
				continue
			}
			select {
			case out <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// fetcher brings blocks from a source into the local store, verified.
type fetcher struct {
	store   BlockStore
	batch   batchPutter // set when store can PutMany
	source  BlockSource
	fetched atomic.Int64 // blocks received, verified and stored
	bytes   atomic.Int64
}

// ensure makes every CID of cids present and verified in the local store,
// asking the source only for those missing, in one GetBlocks call.
func (f *fetcher) ensure(ctx context.Context, cids []cid.Cid) error {
	want := make(map[cid.Cid]bool, len(cids))
	var missing []cid.Cid
	for _, c := range cids {
		if _, dup := want[c]; dup {
			continue
		}
		has, err := f.store.Has(ctx, c)
		if err != nil {
			return fmt.Errorf("local store: %w", err)
		}
		want[c] = has
		if !has {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	ch := f.source.GetBlocks(ctx, missing)
	// Verified blocks are stored in batches (one synced commit each), and
	// whatever was verified is stored however ensure returns.
	var pending []blocks.Block
	store := func() error {
		if len(pending) == 0 {
			return nil
		}
		if err := putBlocks(context.WithoutCancel(ctx), f.store, pending); err != nil {
			return fmt.Errorf("local store: %w", err)
		}
		for _, b := range pending {
			f.fetched.Add(1)
			f.bytes.Add(int64(len(b.RawData())))
		}
		pending = pending[:0]
		return nil
	}
	defer func() {
		cancel()
		for range ch { // let the source finish and close
		}
		store()
	}()
	got := 0
	for b := range ch {
		c := b.Cid()
		if done, asked := want[c]; !asked || done {
			continue // unasked or repeated: ignore, never store
		}
		if err := verifyReceived(c, b); err != nil {
			return err
		}
		pending = append(pending, b)
		want[c] = true
		got++
		if len(pending) >= assembleBatch || got == len(missing) {
			if err := store(); err != nil {
				return err
			}
		}
		if got == len(missing) {
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, c := range missing {
		if !want[c] {
			return &BlockError{CID: c, Err: fmt.Errorf("%w: the source did not deliver it (%d of %d delivered); retry when peers have it", ErrBlockMissing, got, len(missing))}
		}
	}
	return nil
}

// load reads c from the local store and verifies it again: the disk is not
// trusted either.
func (f *fetcher) load(ctx context.Context, c cid.Cid) ([]byte, error) {
	b, err := f.store.Get(ctx, c)
	if err != nil {
		return nil, &BlockError{CID: c, Err: fmt.Errorf("%w: %w", ErrBlockMissing, err)}
	}
	if err := VerifyBlock(c, b.RawData()); err != nil {
		var be *BlockError
		if errors.As(err, &be) {
			be.local = true
		}
		return nil, err
	}
	return b.RawData(), nil
}

// blockDeleter is implemented by boxo blockstores.
type blockDeleter interface {
	DeleteBlock(ctx context.Context, c cid.Cid) error
}

// dropCorrupt deletes a local block that failed verification, if err says
// so and the store can delete, so that the next attempt fetches it again.
// It reports whether it did.
func (f *fetcher) dropCorrupt(ctx context.Context, err error) bool {
	var be *BlockError
	d, ok := f.store.(blockDeleter)
	if !ok || !errors.As(err, &be) || !be.local || !errors.Is(err, ErrBlockMismatch) {
		return false
	}
	return d.DeleteBlock(ctx, be.CID) == nil
}

// batchPutter is implemented by boxo blockstores: one synced write for many
// blocks.
type batchPutter interface {
	PutMany(ctx context.Context, bs []blocks.Block) error
}

func newFetcher(store BlockStore, source BlockSource) *fetcher {
	f := &fetcher{store: store, source: source}
	f.batch, _ = store.(batchPutter)
	return f
}

// Fetch makes every block of cids present and verified in bs, asking src
// only for the missing ones, in one request. Blocks src sends that were
// not asked for, or that do not match their CID, are never stored.
func Fetch(ctx context.Context, bs BlockStore, src BlockSource, cids []cid.Cid) error {
	return newFetcher(bs, src).ensure(ctx, cids)
}
