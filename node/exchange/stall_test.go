package exchange

import (
	"context"
	"sync"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// stuckSource delivers the first block of a request, then hangs until the
// request is cancelled — like a bitswap session that missed an update —
// and behaves on later requests.
type stuckSource struct {
	blocks map[cid.Cid]blocks.Block
	mu     sync.Mutex
	asked  [][]cid.Cid
}

func (s *stuckSource) GetBlocks(ctx context.Context, cids []cid.Cid) <-chan blocks.Block {
	s.mu.Lock()
	s.asked = append(s.asked, cids)
	first := len(s.asked) == 1
	s.mu.Unlock()
	out := make(chan blocks.Block)
	go func() {
		defer close(out)
		for i, c := range cids {
			if first && i == 1 {
				<-ctx.Done()
				return
			}
			select {
			case out <- s.blocks[c]:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func TestStallSourceAsksAgainForWhatIsMissing(t *testing.T) {
	src := &stuckSource{blocks: map[cid.Cid]blocks.Block{}}
	var cids []cid.Cid
	for _, s := range []string{"a", "b", "c"} {
		b := blocks.NewBlock([]byte(s))
		src.blocks[b.Cid()] = b
		cids = append(cids, b.Cid())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := map[cid.Cid]int{}
	for b := range (stallSource{src: src, stall: 50 * time.Millisecond}).GetBlocks(ctx, cids) {
		got[b.Cid()]++
	}
	for _, c := range cids {
		if got[c] != 1 {
			t.Fatalf("block %s delivered %d times", c, got[c])
		}
	}
	if len(src.asked) != 2 || len(src.asked[1]) != 2 || src.asked[1][0] != cids[1] {
		t.Fatalf("requests %v: want a second request for the two missing blocks only", src.asked)
	}
}
