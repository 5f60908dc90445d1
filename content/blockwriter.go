package content

import (
	"context"
	"fmt"
	"sync"

	blocks "github.com/ipfs/go-block-format"
)

// blockWriter stores blocks behind the CPU-bound stages of publishing and
// assembly: it gathers them into batches (one synced commit each on the
// on-disk store) and commits each on its own goroutine, so that the disk
// writes one batch while the next one fills and the workers rarely wait
// for it. The first error cancels the pipeline through fail; later blocks
// are dropped.
type blockWriter struct {
	bs     BlockStore
	many   batchPutter
	batch  int
	in     chan writeReq
	done   chan struct{}
	fail   context.CancelCauseFunc
	stored func([]blocks.Block) // if set, called with each batch once stored

	mu  sync.Mutex
	err error
}

// writeReq is a block to store, or (block nil) a request to commit what is
// pending and report on flushed once it is stored.
type writeReq struct {
	block   blocks.Block
	flushed chan error
}

// Blocks per commit when publishing (at most 16 MiB, about 8 MiB
// typically) and when assembling (half: the device's memory bound).
const (
	publishBatch  = 32
	assembleBatch = 16
	// commitsInFlight is how many batches are committed at once. Two
	// measured no faster on the project machine (syncfs flushes the
	// whole file system either way) and held 8 MiB more on a device.
	commitsInFlight = 1
)

// newBlockWriter starts a writer committing batch blocks at a time. It
// holds at most (commitsInFlight + 1) × batch + batch/2 blocks.
func newBlockWriter(ctx context.Context, bs BlockStore, batch int, fail context.CancelCauseFunc, stored func([]blocks.Block)) *blockWriter {
	w := &blockWriter{bs: bs, in: make(chan writeReq, batch/2), done: make(chan struct{}), fail: fail, stored: stored, batch: batch}
	w.many, _ = bs.(batchPutter)
	go w.run(context.WithoutCancel(ctx))
	return w
}

// add queues b for storage.
func (w *blockWriter) add(b blocks.Block) { w.in <- writeReq{block: b} }

// flush returns once every block added before it is stored, with the
// writer's first error.
func (w *blockWriter) flush() error {
	done := make(chan error, 1)
	w.in <- writeReq{flushed: done}
	return <-done
}

// close stores what is queued and returns the first error.
func (w *blockWriter) close() error {
	close(w.in)
	<-w.done
	return w.firstErr()
}

func (w *blockWriter) firstErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *blockWriter) run(ctx context.Context) {
	defer close(w.done)
	var commits sync.WaitGroup
	defer commits.Wait()
	slots := make(chan struct{}, commitsInFlight)
	batch := make([]blocks.Block, 0, w.batch)
	commit := func() {
		if len(batch) == 0 {
			return
		}
		b := batch
		batch = make([]blocks.Block, 0, w.batch)
		slots <- struct{}{}
		commits.Go(func() {
			defer func() { <-slots }()
			if w.firstErr() != nil {
				return
			}
			if err := putBlocks(ctx, w.bs, b); err != nil {
				w.mu.Lock()
				if w.err == nil {
					w.err = err
				}
				w.mu.Unlock()
				w.fail(err)
				return
			}
			if w.stored != nil {
				w.stored(b)
			}
		})
	}
	for r := range w.in {
		if r.block == nil {
			commit()
			commits.Wait()
			r.flushed <- w.firstErr()
			continue
		}
		batch = append(batch, r.block)
		// Commit a full batch, or a partial one when nothing else is
		// queued and the store has no batch write.
		if len(batch) >= w.batch || w.many == nil && len(w.in) == 0 {
			commit()
		}
	}
	commit()
}

// putBlocks stores bs in one batch (one synced commit) when the store can.
func putBlocks(ctx context.Context, store BlockStore, bs []blocks.Block) error {
	if many, ok := store.(batchPutter); ok && len(bs) > 1 {
		if err := many.PutMany(ctx, bs); err != nil {
			return fmt.Errorf("store blocks: %w", err)
		}
		return nil
	}
	for _, b := range bs {
		if err := store.Put(ctx, b); err != nil {
			return fmt.Errorf("store block: %w", err)
		}
	}
	return nil
}
