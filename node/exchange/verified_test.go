package exchange

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/content"
)

// TestOnlyNetworkBlocksAreMarkedVerified: blocks bitswap brought from a
// peer (hashed by its decoder) are marked content.Verified; blocks the
// blockservice answered from the local store are not, whatever the shape
// of the request (one block, split into a session per block, one bulk
// session).
func TestOnlyNetworkBlocksAreMarkedVerified(t *testing.T) {
	for _, tc := range []struct {
		name          string
		remote, local int
	}{
		{"one remote block", 1, 0},
		{"one local block", 0, 1},
		{"split request", 3, 3},
		{"bulk request", maxSplit, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blks := makeBlocks(t, tc.remote+tc.local, 16<<10)
			seedStore, devStore := newStore(), newStore()
			remote := map[cid.Cid]bool{}
			var cids []cid.Cid
			for i, b := range blks {
				seedStore.Put(t.Context(), b)
				if i < tc.remote {
					remote[b.Cid()] = true
				} else {
					devStore.Put(t.Context(), b)
				}
				cids = append(cids, b.Cid())
			}
			seed, dev := newPeer(t, seedStore, nil), newPeer(t, devStore, nil)
			link(t, dev, seed)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			n := 0
			for b := range dev.ex.GetBlocks(ctx, cids) {
				n++
				if got, want := content.IsVerified(b), remote[b.Cid()]; got != want {
					t.Errorf("block %s (from the network: %v) marked verified: %v", b.Cid(), want, got)
				}
			}
			if n != len(cids) {
				t.Fatalf("got %d of %d blocks", n, len(cids))
			}
		})
	}
}

// appearingStore holds blocks whose bytes on disk are damaged, and which
// appear there only after content looked (Has says no): as when another
// fetch stores a block between content's look and the exchange's, which
// then answers from the store.
type appearingStore struct{ blockstore.Blockstore }

func (appearingStore) Has(context.Context, cid.Cid) (bool, error) { return false, nil }

// TestCorruptLocalBlockIsCaught: a block the exchange answers from a
// corrupt local store is not marked, so content hashes it and rejects it,
// whether it fetches or assembles.
func TestCorruptLocalBlockIsCaught(t *testing.T) {
	blks := makeBlocks(t, 4, 16<<10)
	disk := newStore()
	for _, b := range blks {
		disk.Put(t.Context(), b)
	}
	// The seed has the blocks intact; the device's disk has them damaged.
	seed := newPeer(t, newStore(), nil)
	for _, b := range blks {
		seed.bs.Put(t.Context(), b)
	}
	dev := newPeer(t, lyingStore{appearingStore{disk}}, nil)
	link(t, dev, seed)
	var cids []cid.Cid
	for _, b := range blks {
		cids = append(cids, b.Cid())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := content.Fetch(ctx, dev.bs, dev.ex, cids)
	if !errors.Is(err, content.ErrBlockMismatch) {
		t.Fatalf("Fetch = %v, want ErrBlockMismatch", err)
	}
}
