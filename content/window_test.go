package content

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// heldSource holds back the blocks of its first GetBlocks call until a
// second call comes: it delivers only to a caller that asks for the next
// window while the current one is still arriving.
type heldSource struct {
	src    BlockSource
	mu     sync.Mutex
	calls  int
	second chan struct{}
}

func (s *heldSource) GetBlocks(ctx context.Context, cids []cid.Cid) <-chan blocks.Block {
	s.mu.Lock()
	s.calls++
	n := s.calls
	s.mu.Unlock()
	if n == 2 {
		close(s.second)
	}
	if n != 1 {
		return s.src.GetBlocks(ctx, cids)
	}
	out := make(chan blocks.Block)
	go func() {
		defer close(out)
		select {
		case <-s.second:
		case <-ctx.Done():
			return
		}
		for b := range s.src.GetBlocks(ctx, cids) {
			select {
			case out <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// TestAssembleAsksForTheNextWindowEarly: the next window is requested
// while the current one is still arriving, so a link does not idle for a
// request's round trip between windows.
func TestAssembleAsksForTheNextWindowEarly(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 7))
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	nodes := []node{{path: "f", data: randBytes(r, 6*MaxChunkSize), mode: 0o644}}
	writeTree(t, src, nodes)
	pub := memStore()
	rel := publishTree(t, ctx, pub, src, nil)
	dev := memStore()
	x, err := OpenIndex(ctx, dev, StoreSource{pub}, rel.IndexRoot, &rel.Key, testChannel)
	if err != nil {
		t.Fatal(err)
	}
	if x.NumChunks() < 4 {
		t.Fatalf("%d chunks: the test needs more than two windows of 2", x.NumChunks())
	}
	// Not a timing: a guard that turns a pipeline stuck on its first
	// window into a failure instead of a hang.
	actx, cancel := context.WithTimeoutCause(ctx, time.Minute, errors.New("the second window was never requested"))
	defer cancel()
	held := &heldSource{src: StoreSource{pub}, second: make(chan struct{})}
	if _, err := Assemble(actx, dev, held, x, filepath.Join(dir, "stage"), AssembleOptions{Window: 2}); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, src, filepath.Join(dir, "stage"))
}
