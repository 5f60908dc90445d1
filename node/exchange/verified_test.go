package exchange

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/crypto"
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

// damagedStore is a device's store whose copies of some blocks are
// damaged on disk, and which holds them only after content looked (Has
// says no): as when another fetch stores a block between content's look
// and the exchange's, which then answers from the store.
type damagedStore struct {
	blockstore.Blockstore
	damaged map[cid.Cid]bool
}

func (s damagedStore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if s.damaged[c] {
		return false, nil
	}
	return s.Blockstore.Has(ctx, c)
}

func (s damagedStore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if s.damaged[c] {
		return lyingStore{s.Blockstore}.Get(ctx, c)
	}
	return s.Blockstore.Get(ctx, c)
}

// TestCorruptLocalBlockIsCaught: a block the exchange answers from a
// corrupt local store is not marked verified, so content hashes it and
// rejects it, and never stores it, whether it fetches blocks or
// assembles a release (where a block wrongly taken as verified would be
// stored before decryption failed).
func TestCorruptLocalBlockIsCaught(t *testing.T) {
	const channel = "meshota/test"
	secret := crypto.ChannelSecret{9}
	src := filepath.Join(t.TempDir(), "file")
	data := make([]byte, 700<<10)
	rand.NewChaCha8([32]byte{1}).Read(data)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		run  func(ctx context.Context, dev *peerNode, rel *content.Release, chunks []cid.Cid) error
	}{
		{"fetch", func(ctx context.Context, dev *peerNode, _ *content.Release, chunks []cid.Cid) error {
			return content.Fetch(ctx, dev.bs, dev.ex, chunks)
		}},
		{"assemble", func(ctx context.Context, dev *peerNode, rel *content.Release, _ []cid.Cid) error {
			x, err := content.OpenIndex(ctx, dev.bs, dev.ex, rel.IndexRoot, &rel.Key, channel)
			if err != nil {
				return err
			}
			_, err = content.Assemble(ctx, dev.bs, dev.ex, x, filepath.Join(t.TempDir(), "staging"), content.AssembleOptions{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The seed has the release intact; the device's disk has every
			// block of it, its chunks damaged.
			seed := newPeer(t, newStore(), nil)
			rel, err := content.Publish(t.Context(), seed.bs, content.PublishOptions{Channel: channel, Secret: &secret, Source: src})
			if err != nil {
				t.Fatal(err)
			}
			disk := newStore()
			keys, _ := seed.bs.AllKeysChan(t.Context())
			for c := range keys {
				b, _ := seed.bs.Get(t.Context(), c)
				disk.Put(t.Context(), b)
			}
			var chunks []cid.Cid
			damaged := map[cid.Cid]bool{}
			for _, c := range rel.Index.Chunks {
				chunks = append(chunks, c.CID)
				damaged[c.CID] = true
			}
			dev := newPeer(t, damagedStore{disk, damaged}, nil)
			link(t, dev, seed)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if err := tc.run(ctx, dev, rel, chunks); !errors.Is(err, content.ErrBlockMismatch) {
				t.Fatalf("error = %v, want ErrBlockMismatch", err)
			}
		})
	}
}
