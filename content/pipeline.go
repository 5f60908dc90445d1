package content

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"golang.org/x/sys/unix"

	"github.com/meshota/meshota/crypto"
)

// assembly is one Assemble call's pipeline:
//
//	feeder ──requests──▶ source.GetBlocks ─┐
//	   │ (local blocks)                   ▼
//	   └────────────────────────────▶ workers: verify CID, decrypt, check hash
//	                                      │            │
//	                                      ▼            ▼
//	                         writer (in index order)  blockWriter (batched store)
//
// The feeder walks the chunks in index order and queues one job per chunk
// on ordered (bounded: 2 × window) before asking for its block, so the
// writer takes results in order and the pipeline holds at most that many
// plaintext chunks; each chunk the writer takes lets the feeder ask for
// the next one (see feed). Workers verify and decrypt on all cores. Every block
// received from the source is verified and queued for storage, even after a
// cancellation, so a verified block is never fetched twice.
type assembly struct {
	f                *fetcher
	x                *Index
	staging          string
	window, workers  int
	progPath         string
	id               [32]byte
	mu               sync.Mutex
	inflight         map[cid.Cid]*blockState // asked of the source, not yet stored
	tasks            chan task
	ordered          chan *chunkJob
	w                *blockWriter
	ctx              context.Context
	cancel           context.CancelCauseFunc
	receivers, feedW sync.WaitGroup
}

// chunkJob is one chunk position of the release, in index order.
type chunkJob struct {
	c    *Chunk
	buf  *[]byte // pooled plaintext buffer holding data
	data []byte
	err  error
	done chan struct{}
}

func (j *chunkJob) finish(err error) {
	j.err = err
	close(j.done)
}

// blockState is one block a window needs: from the store or the source.
// Jobs wait on it until its verified ciphertext is known (or it failed).
type blockState struct {
	c        cid.Cid
	local    bool
	fresh    bool // missing, not yet asked for (feeder only)
	received bool // from the source (feeder's receiver only)
	mu       sync.Mutex
	resolved bool
	data     []byte
	err      error
	waiting  []*chunkJob
}

// task is work for a worker: verify (and for local blocks load) st's
// block, or decrypt job from already verified data.
type task struct {
	st   *blockState
	b    blocks.Block // st's block as received from the source
	job  *chunkJob
	data []byte
}

// run assembles entries from..end. It returns the index of the entry it
// stopped at, with the error that stopped it.
func (a *assembly) run(parent context.Context, from uint64, st *AssembleStats) (uint64, error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	a.ctx, a.cancel = ctx, cancel
	a.inflight = map[cid.Cid]*blockState{}
	a.tasks = make(chan task, a.workers)
	a.ordered = make(chan *chunkJob, 2*a.window)
	a.w = newBlockWriter(ctx, a.f.store, assembleBatch, cancel, a.stored)

	var workers sync.WaitGroup
	for range a.workers {
		workers.Go(a.work)
	}
	a.feedW.Go(func() { a.feed(a.firstChunk(from)) })

	at, err := a.write(from, st)
	// Stop the feeder and close the sources' channels (after success they
	// have delivered everything already; what still arrives is ignored).
	cancel(err)
	a.feedW.Wait()
	a.receivers.Wait()
	close(a.tasks)
	workers.Wait()
	if serr := a.w.close(); serr != nil && err == nil {
		err = serr
	}
	return at, err
}

// firstChunk is the first chunk of the first file at or after entry from.
func (a *assembly) firstChunk(from uint64) uint64 {
	for _, e := range a.x.Entries[from:] {
		if e.Type == TypeFile && e.NumChunks > 0 {
			return e.FirstChunk
		}
	}
	return a.x.NumChunks()
}

// stored runs on the block writer after each committed batch.
func (a *assembly) stored(bs []blocks.Block) {
	a.mu.Lock()
	for _, b := range bs {
		delete(a.inflight, b.Cid())
	}
	a.mu.Unlock()
	for _, b := range bs {
		a.f.fetched.Add(1)
		a.f.bytes.Add(int64(len(b.RawData())))
	}
}

// feed queues the chunks from first on and asks the source for the
// missing ones as it goes: a sliding window. ordered (2 × window jobs)
// bounds the chunks between the feeder and the writer, so as the writer
// takes each chunk the feeder queues and asks for the next one at once,
// instead of waiting for a whole window to complete: a link shared by
// devices asking for the same blocks (a site behind a slow uplink) then
// always has blocks asked for and not yet sent (docs/PERFORMANCE.md
// section 4). Requests hold at most window chunks, so the first 2 ×
// window are asked for in two.
func (a *assembly) feed(first uint64) {
	chunks := a.x.cursor(a.ctx)
	total := a.x.NumChunks()
	var missing []*blockState // queued, not yet asked for
	ask := func() {
		if len(missing) == 0 {
			return
		}
		batch := missing
		missing = nil
		a.receivers.Go(func() { a.receive(batch) })
	}
	defer func() {
		if err := context.Cause(a.ctx); err != nil {
			for _, s := range missing {
				a.fail(s, err)
			}
			return
		}
		ask()
	}()
	for n := first; n < total; n++ {
		c, err := chunks.at(n)
		job := &chunkJob{c: c, done: make(chan struct{})}
		select {
		case a.ordered <- job:
		default:
			// The writer is 2 × window behind: ask for what is queued
			// before waiting for it to take the next chunk.
			ask()
			select {
			case a.ordered <- job:
			case <-a.ctx.Done():
				return
			}
		}
		if err != nil {
			job.finish(err) // the writer reports it in order
			return
		}
		s, ok := a.state(c.CID)
		if !ok {
			job.finish(s.err)
			return
		}
		if !a.attach(s, job) {
			return
		}
		if s.local { // a new state each time: loaded once per chunk
			if !a.load(s) {
				return
			}
		} else if s.fresh {
			s.fresh = false
			missing = append(missing, s)
			if len(missing) >= a.window {
				ask()
			}
		}
	}
}

// state returns the block state of c: one already in flight, or a new
// one, from the store (local) or to ask for (fresh). It fails (false,
// with the error in the returned state) when the store does not answer.
func (a *assembly) state(c cid.Cid) (*blockState, bool) {
	a.mu.Lock()
	s := a.inflight[c]
	a.mu.Unlock()
	if s != nil {
		return s, true
	}
	has, err := a.f.store.Has(a.ctx, c)
	if err != nil {
		return &blockState{c: c, err: fmt.Errorf("local store: %w", err)}, false
	}
	s = &blockState{c: c, local: has, fresh: !has}
	if !has {
		a.mu.Lock()
		a.inflight[c] = s
		a.mu.Unlock()
	}
	return s, true
}

// load hands a block of the local store to the workers.
func (a *assembly) load(s *blockState) bool {
	select {
	case a.tasks <- task{st: s}:
		return true
	case <-a.ctx.Done():
		a.fail(s, context.Cause(a.ctx))
		return false
	}
}

// attach makes job wait for s, or dispatches it when s is already known.
func (a *assembly) attach(s *blockState, job *chunkJob) bool {
	s.mu.Lock()
	if !s.resolved {
		s.waiting = append(s.waiting, job)
		s.mu.Unlock()
		return true
	}
	data, err := s.data, s.err
	s.mu.Unlock()
	if err != nil {
		job.finish(err)
		return true
	}
	select {
	case a.tasks <- task{job: job, data: data}:
		return true
	case <-a.ctx.Done():
		job.finish(context.Cause(a.ctx))
		return false
	}
}

// receive asks the source for the missing blocks of one window and hands
// each block that was asked for, once, to the workers.
func (a *assembly) receive(missing []*blockState) {
	want := make(map[cid.Cid]*blockState, len(missing))
	cids := make([]cid.Cid, len(missing))
	for i, s := range missing {
		want[s.c], cids[i] = s, s.c
	}
	got := 0
	for b := range a.f.source.GetBlocks(a.ctx, cids) {
		s := want[b.Cid()]
		if s == nil || s.received {
			continue // unasked or repeated: ignore, never store
		}
		s.received = true
		got++
		// Workers drain tasks until every receiver is done: a block
		// received is always verified and stored, even after a cancellation.
		a.tasks <- task{st: s, b: b}
	}
	for _, s := range missing {
		if !s.received {
			err := context.Cause(a.ctx)
			if err == nil {
				err = &BlockError{CID: s.c, Err: fmt.Errorf("%w: the source did not deliver it (%d of %d delivered); retry when peers have it", ErrBlockMissing, got, len(missing))}
			}
			a.fail(s, err)
		}
	}
}

// fail resolves s with err and forgets it.
func (a *assembly) fail(s *blockState, err error) {
	if !s.local {
		a.mu.Lock()
		if a.inflight[s.c] == s {
			delete(a.inflight, s.c)
		}
		a.mu.Unlock()
	}
	for _, j := range s.resolve(nil, err) {
		j.finish(err)
	}
}

// resolve records the outcome and returns the jobs that waited for it.
func (s *blockState) resolve(data []byte, err error) []*chunkJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resolved, s.data, s.err = true, data, err
	w := s.waiting
	s.waiting = nil
	return w
}

func (a *assembly) work() {
	for t := range a.tasks {
		if t.job != nil {
			a.open(t.job, t.data)
			continue
		}
		s := t.st
		var data []byte
		var err error
		if s.local {
			data, err = a.f.load(a.ctx, s.c)
		} else {
			data = t.b.RawData()
			if err = VerifyBlock(s.c, data); err == nil {
				a.w.add(t.b)
			}
		}
		if err != nil {
			a.fail(s, err)
			continue
		}
		for _, j := range s.resolve(data, nil) {
			a.open(j, data)
		}
	}
}

// open decrypts and authenticates one chunk into a pooled buffer.
func (a *assembly) open(j *chunkJob, ct []byte) {
	if err := context.Cause(a.ctx); err != nil {
		j.finish(err)
		return
	}
	c := j.c
	buf := getChunkBuf()
	pt, err := crypto.OpenChunk((*buf)[:0], &c.Key, a.x.Channel, ct, c.Hash)
	if err == nil && len(pt) != int(c.Len) {
		err = fmt.Errorf("%w: %d bytes, index says %d", ErrChunkCorrupt, len(pt), c.Len)
	} else if err != nil {
		err = fmt.Errorf("%w: %w", ErrChunkCorrupt, err)
	}
	if err != nil {
		putChunkBuf(buf)
		j.finish(&BlockError{CID: c.CID, Err: err})
		return
	}
	j.buf, j.data = buf, pt
	j.finish(nil)
}

// next returns the next chunk's plaintext, in index order.
func (a *assembly) next() (*chunkJob, error) {
	var j *chunkJob
	select {
	case j = <-a.ordered:
	case <-a.ctx.Done():
		return nil, context.Cause(a.ctx)
	}
	select {
	case <-j.done:
	case <-a.ctx.Done():
		return nil, context.Cause(a.ctx)
	}
	if j.err != nil {
		return nil, j.err
	}
	return j, nil
}

// write creates the entries from..end in staging, in order, and records
// progress. It returns the entry it stopped at.
func (a *assembly) write(from uint64, st *AssembleStats) (uint64, error) {
	saver := a.startSaver()
	var sinceSave uint64
	for i := from; i < uint64(len(a.x.Entries)); i++ {
		if err := context.Cause(a.ctx); err != nil {
			saver.stop()
			return i, err
		}
		e := &a.x.Entries[i]
		dst := filepath.Join(a.staging, filepath.FromSlash(e.Path))
		if err := a.writeEntry(e, dst, st, &sinceSave); err != nil {
			saver.stop()
			return i, err
		}
		if sinceSave >= progressEvery {
			if err := saver.save(i + 1); err != nil {
				saver.stop()
				return i, err
			}
			sinceSave = 0
		}
	}
	if err := saver.stop(); err != nil {
		return uint64(len(a.x.Entries)), err
	}
	if err := a.w.flush(); err != nil {
		return uint64(len(a.x.Entries)), err
	}
	return uint64(len(a.x.Entries)), nil
}

func (a *assembly) writeEntry(e *Entry, dst string, st *AssembleStats, sinceSave *uint64) error {
	if err := clearPath(dst, e.Type); err != nil {
		return err
	}
	switch e.Type {
	case TypeDir:
		if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("staging: %w", err)
		}
	case TypeSymlink:
		if err := os.Symlink(e.Target, dst); err != nil {
			return fmt.Errorf("staging: %w", err)
		}
	case TypeFile:
		n, err := a.writeFile(e, dst)
		st.Written += n
		if err != nil {
			return err
		}
		*sinceSave += n + 4096
	}
	return nil
}

// progressSaver records progress on its own goroutine, so that the
// writer goes on while the file system is flushed: a save stores the
// blocks queued so far, syncs the file system (staging included), then
// writes the progress file. Requests that arrive during a save are
// merged into the next one.
type progressSaver struct {
	req  chan uint64
	done chan struct{}
	mu   sync.Mutex
	err  error
}

func (a *assembly) startSaver() *progressSaver {
	p := &progressSaver{req: make(chan uint64, 1), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for n := range p.req {
			err := a.w.flush()
			if err == nil {
				err = saveProgress(a.progPath, a.id, n)
			}
			if err != nil {
				p.mu.Lock()
				p.err = err
				p.mu.Unlock()
				a.cancel(err)
				for range p.req {
				}
				return
			}
		}
	}()
	return p
}

// save asks for entries 0..done-1 to be recorded and returns the error of
// an earlier save, if any.
func (p *progressSaver) save(done uint64) error {
	select {
	case <-p.req: // not started yet: replaced by this one
	default:
	}
	p.req <- done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// stop waits for the last save and returns the first error.
func (p *progressSaver) stop() error {
	close(p.req)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// writebackEvery is how many bytes of a staging file are written before
// the kernel is asked to start writing them out (sync_file_range, no
// wait), so that the syncs of progress saves and of the end find little
// left to write.
const writebackEvery = 8 << 20

func (a *assembly) writeFile(e *Entry, dst string) (uint64, error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return 0, fmt.Errorf("staging: %w", err)
	}
	defer out.Close()
	var written, hinted uint64
	for range e.NumChunks {
		j, err := a.next()
		if err != nil {
			return written, err
		}
		_, err = out.Write(j.data)
		putChunkBuf(j.buf)
		if err != nil {
			return written, fmt.Errorf("staging: %w", err)
		}
		written += uint64(len(j.data))
		if written-hinted >= writebackEvery {
			// A hint: errors (say, a file system without it) do not matter.
			unix.SyncFileRange(int(out.Fd()), int64(hinted), int64(written-hinted), unix.SYNC_FILE_RANGE_WRITE)
			hinted = written
		}
	}
	if err := out.Chmod(fs.FileMode(e.Mode)); err != nil {
		return written, fmt.Errorf("staging: %w", err)
	}
	return written, out.Close()
}
