package content

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
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
		pass(ctx, s.src.GetBlocks(ctx, cids), out, nil)
	}()
	return out
}

// pass forwards in to out until in closes or ctx ends, calling each (if
// set) for every block.
func pass(ctx context.Context, in <-chan blocks.Block, out chan<- blocks.Block, each func()) bool {
	for b := range in {
		if each != nil {
			each()
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// windowRelease publishes a file of size bytes and opens its index on a
// device's empty store.
func windowRelease(t *testing.T, seed uint64, size int) (src string, pub, dev blockstore.Blockstore, x *Index) {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, seed))
	src = filepath.Join(t.TempDir(), "src")
	writeTree(t, src, []node{{path: "f", data: randBytes(r, size), mode: 0o644}})
	pub, dev = memStore(), memStore()
	rel := publishTree(t, ctx, pub, src, nil)
	x, err := OpenIndex(ctx, dev, StoreSource{pub}, rel.IndexRoot, &rel.Key, testChannel)
	if err != nil {
		t.Fatal(err)
	}
	return src, pub, dev, x
}

// TestAssembleAsksForTheNextWindowEarly: the next window is requested
// while the current one is still arriving, so a link does not idle for a
// request's round trip between windows.
func TestAssembleAsksForTheNextWindowEarly(t *testing.T) {
	ctx := context.Background()
	src, pub, dev, x := windowRelease(t, 7, 6*MaxChunkSize)
	stage := filepath.Join(t.TempDir(), "stage")
	if x.NumChunks() < 4 {
		t.Fatalf("%d chunks: the test needs more than two windows of 2", x.NumChunks())
	}
	// Not a timing: a guard that turns a pipeline stuck on its first
	// window into a failure instead of a hang.
	actx, cancel := context.WithTimeoutCause(ctx, time.Minute, errors.New("the second window was never requested"))
	defer cancel()
	held := &heldSource{src: StoreSource{pub}, second: make(chan struct{})}
	if _, err := Assemble(actx, dev, held, x, stage, AssembleOptions{Window: 2}); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, src, stage)
}

// gatedSource delivers a block only once the test releases it, and keeps
// count of the blocks asked for and not yet delivered.
type gatedSource struct {
	src      BlockSource
	released map[cid.Cid]chan struct{}
	index    map[cid.Cid]int // chunk position
	asked    chan int        // the highest position of each request
	mu       sync.Mutex
	pending  int // asked, not delivered
	peak     int
}

func (s *gatedSource) GetBlocks(ctx context.Context, cids []cid.Cid) <-chan blocks.Block {
	s.mu.Lock()
	s.pending += len(cids)
	s.peak = max(s.peak, s.pending)
	s.mu.Unlock()
	top := 0
	for _, c := range cids {
		top = max(top, s.index[c])
	}
	s.asked <- top
	out := make(chan blocks.Block)
	go func() {
		defer close(out)
		for _, c := range cids {
			select {
			case <-s.released[c]:
			case <-ctx.Done():
				return
			}
			delivered := func() {
				s.mu.Lock()
				s.pending--
				s.mu.Unlock()
			}
			if !pass(ctx, s.src.GetBlocks(ctx, []cid.Cid{c}), out, delivered) {
				return
			}
		}
	}()
	return out
}

// TestAssembleSlidesItsWindow: the chunk after the first 2 × Window is
// asked for as soon as the first chunk is in, not once the whole first
// window is (a link shared by devices asking for the same blocks would
// idle meanwhile), and no more than 2 × Window + 1 chunks are ever asked
// for and not delivered (memory).
func TestAssembleSlidesItsWindow(t *testing.T) {
	const window = 4
	ctx := context.Background()
	src, pub, dev, x := windowRelease(t, 8, 16*MaxChunkSize)
	stage := filepath.Join(t.TempDir(), "stage")
	n := int(x.NumChunks())
	if n < 4*window {
		t.Fatalf("%d chunks: the test needs at least four windows", n)
	}
	gated := &gatedSource{src: StoreSource{pub}, released: map[cid.Cid]chan struct{}{}, index: map[cid.Cid]int{}, asked: make(chan int, 4*n)}
	order := make([]cid.Cid, n)
	cur := x.cursor(ctx)
	for i := range n {
		c, err := cur.at(uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		order[i] = c.CID
		gated.released[c.CID] = make(chan struct{})
		gated.index[c.CID] = i
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Assemble(actx, dev, gated, x, stage, AssembleOptions{Window: window, Workers: 2})
		done <- err
	}()
	close(gated.released[order[0]])
	// Not a timing: a guard that turns a feeder that waits for the whole
	// first window into a failure instead of a hang.
	guard := time.After(time.Minute)
	for top := 0; top <= 2*window; {
		select {
		case i := <-gated.asked: // requests run on their own goroutines: in any order
			top = max(top, i)
		case <-guard:
			cancel()
			t.Fatalf("with chunk 0 of %d in, no request went past chunk %d: the feeder waits for the whole window", n, top)
		}
	}
	for _, c := range order[1:] {
		close(gated.released[c])
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	compareTrees(t, src, stage)
	if gated.peak > 2*window+1 {
		t.Fatalf("%d chunks asked for and not delivered at once; want at most 2 × window + 1 = %d", gated.peak, 2*window+1)
	}
	t.Logf("%d chunks, at most %d asked for and not delivered", n, gated.peak)
}
