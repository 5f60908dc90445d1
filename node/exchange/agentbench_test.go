package exchange

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/content/store"
	"github.com/meshota/meshota/crypto"
)

// BenchmarkAgentVsStream is figure 3b's fetch made the way an agent makes
// it: the seed holds a published release of the same size, and the agent
// runs content.OpenIndex and content.Assemble through the exchange into a
// pack store on disk (content/store) and a staging directory: every block
// verified, stored durably, decrypted and written out. Figure 3b's own
// benchmark stores into memory and never verifies or decrypts, so it sees
// none of those costs; this one reports the same figures for them.
func BenchmarkAgentVsStream(b *testing.B) {
	benchVsStream(b, publishedRelease, func(b *testing.B) (blockstore.Blockstore, func()) {
		s, err := store.Open(filepath.Join(b.TempDir(), "store"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		return s.Blockstore(), func() { s.Close() }
	})
}

// publishedRelease publishes size random bytes (one file) into the seed's
// store and assembles them through the exchange.
func publishedRelease(b *testing.B, seed blockstore.Blockstore, size int) func(*benchPeer, func()) {
	const channel = "meshota/bench"
	secret := crypto.ChannelSecret{7}
	dir := b.TempDir()
	f, err := os.Create(filepath.Join(dir, "data"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.NewChaCha8([32]byte{byte(b.N)}), int64(size)); err != nil {
		b.Fatal(err)
	}
	f.Close()
	rel, err := content.Publish(context.Background(), seed, content.PublishOptions{Channel: channel, Secret: &secret, Source: f.Name()})
	if err != nil {
		b.Fatal(err)
	}
	return func(dst *benchPeer, got func()) {
		ctx := context.Background()
		src := countingSource{dst.ex, got}
		x, err := content.OpenIndex(ctx, dst.bs, src, rel.IndexRoot, &rel.Key, channel)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := content.Assemble(ctx, dst.bs, src, x, filepath.Join(dir, "staging"), content.AssembleOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// countingSource calls got for every block the exchange delivers.
type countingSource struct {
	ex  *Exchange
	got func()
}

func (s countingSource) GetBlocks(ctx context.Context, cids []cid.Cid) <-chan blocks.Block {
	in := s.ex.GetBlocks(ctx, cids)
	out := make(chan blocks.Block)
	go func() {
		defer close(out)
		for blk := range in {
			s.got()
			select {
			case out <- blk:
			case <-ctx.Done():
			}
		}
	}()
	return out
}
