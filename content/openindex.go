package content

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/crypto"
)

// OpenIndex fetches (into bs, from src when missing), verifies, decrypts and
// validates the release index rooted at root. The index it returns holds its
// entries in memory and streams its chunk list from the page blocks in bs. A wrong key or channel gives
// ErrIndexKey; an inconsistent index gives ErrIndexMalformed.
func OpenIndex(ctx context.Context, bs BlockStore, src BlockSource, root cid.Cid, key *crypto.SymmetricKey, channel string) (*Index, error) {
	f := newFetcher(bs, src)
	if err := f.ensure(ctx, []cid.Cid{root}); err != nil {
		return nil, fmt.Errorf("index root: %w", err)
	}
	rootData, err := f.load(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("index root: %w", err)
	}
	r, err := decodeIndexRoot(rootData, key, channel)
	if err != nil {
		return nil, err
	}
	pcids := make([]cid.Cid, len(r.Pages))
	for i, p := range r.Pages {
		pcids[i] = p.CID
	}
	if err := f.ensure(ctx, pcids); err != nil {
		return nil, fmt.Errorf("index pages: %w", err)
	}
	// The index keeps only its entries; its chunks are read again page by
	// page from bs when needed (fetched from src again if bs lost them).
	return decodeIndex(ctx, rootData, key, channel, func(ctx context.Context, c cid.Cid) ([]byte, error) {
		if err := f.ensure(ctx, []cid.Cid{c}); err != nil {
			return nil, err
		}
		return f.load(ctx, c)
	})
}
