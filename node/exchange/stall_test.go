package exchange

import (
	"context"
	"log/slog"
	"strings"
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

func newStuckSource(data ...string) (*stuckSource, []cid.Cid) {
	src := &stuckSource{blocks: map[cid.Cid]blocks.Block{}}
	var cids []cid.Cid
	for _, s := range data {
		b := blocks.NewBlock([]byte(s))
		src.blocks[b.Cid()] = b
		cids = append(cids, b.Cid())
	}
	return src, cids
}

func TestStallSourceAsksAgainForWhatIsMissing(t *testing.T) {
	src, cids := newStuckSource("a", "b", "c")
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

// TestStallSourceClocks checks which clock re-asks for the block a stuck
// session withholds: the quick one only when a peer said HAVE and nothing
// came in since, the long one otherwise.
func TestStallSourceClocks(t *testing.T) {
	tests := []struct {
		name   string
		have   bool // a peer says HAVE for the withheld block
		active bool // exchange bytes keep coming in
		stall  time.Duration
		reason string
	}{
		{"HAVE and nothing flows: quick re-ask", true, false, time.Hour, "a peer has a missing block"},
		{"no HAVE: the long clock", false, false, 300 * time.Millisecond, "no block for"},
		{"HAVE but bytes flow: the long clock", true, true, 300 * time.Millisecond, "no block for"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, cids := newStuckSource("a", "b", "c")
			haves := newHaveBoard()
			var logs strings.Builder
			var mu sync.Mutex
			var settled [][]cid.Cid
			s := stallSource{
				src: src, stall: tt.stall, quick: 20 * time.Millisecond, haves: haves,
				log: slog.New(slog.NewTextHandler(&syncWriter{w: &logs, mu: &mu}, nil)),
				settle: func(_ context.Context, c []cid.Cid) {
					mu.Lock()
					settled = append(settled, c)
					mu.Unlock()
				},
			}
			if tt.active {
				s.active = time.Now
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out := s.GetBlocks(ctx, cids)
			got := 0
			for range out {
				got++
				if got == 1 && tt.have {
					haves.have(cids[1], time.Now()) // the withheld one
				}
			}
			if ctx.Err() != nil || got != 3 {
				t.Fatalf("got %d of 3 blocks (ctx %v): the fetch did not recover", got, ctx.Err())
			}
			mu.Lock()
			defer mu.Unlock()
			if !strings.Contains(logs.String(), tt.reason) {
				t.Fatalf("log %q: want the reason %q", logs.String(), tt.reason)
			}
			// The re-ask waited for the old wants to clear, and asked only
			// for what was missing.
			if len(settled) != 1 || len(settled[0]) != 3 || len(src.asked) != 2 || len(src.asked[1]) != 2 {
				t.Fatalf("settled %v, asked %v", settled, src.asked)
			}
			if n := len(haves.waiting); n != 0 {
				t.Fatalf("%d blocks still watched after the fetch", n)
			}
		})
	}
}

type syncWriter struct {
	w  *strings.Builder
	mu *sync.Mutex
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
