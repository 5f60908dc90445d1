package content

import (
	"context"
	"fmt"
	"sync"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/crypto"
)

// assembly is one Assemble call's pipeline:
//
//	feeder ──requests──▶ source.GetBlocks ─┐
//	   │ (local blocks)                   ▼
//	   └────────────────────────────▶ workers: verify CID, decrypt, check hash
//	                                      │            │
//	                                      ▼            ▼
//	         staging (pwrite at the chunk's offset)   blockWriter (batched store)
//	                                      ▲
//	   writer (in index order): creates entries, gives each job its place
//
// The feeder walks the chunks in index order and queues one job per chunk
// on ordered (bounded: window) before asking for its block. The writer
// takes the jobs in order, creates the entries and gives each job its file
// and offset (stagewriter.go), holding at most window + 1 such jobs not
// yet written: 2 × window + 1 chunks between the feeder and staging. Each
// job the writer takes lets the feeder ask for the next chunk (a sliding
// window, see feed). Workers verify, decrypt and write each chunk at
// its place on all cores. The pipeline holds at most ordered's capacity
// plus the workers' plaintext chunks. Every block
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
	prepare          func(blocks.Block) blocks.Block // the store's PrepareBlock, or none
	ctx              context.Context
	cancel           context.CancelCauseFunc
	receivers, feedW sync.WaitGroup
	unclosed         []*stagedFile // left open by a run that stopped early

	// PlaintextOnly (plain.go): no chunk block is stored; chunks found
	// intact in staging are kept, and a chunk whose block was already
	// written in this run is copied from its place in staging.
	plain    bool
	scan     bool                  // hash staging before the run (it may hold this index's work)
	kept     []bool                // chunk keptBase+i is intact in staging
	keptBase uint64                // chunk number of kept[0]
	written  map[[32]byte]plainLoc // under mu: block digest → a place in staging holding its plaintext
	previous *ChunkMaps            // installed releases to copy chunks from
	staged   *ChunkMap             // told of each chunk in staging (AssembleOptions.Staged)
}

// chunkJob is one chunk position of the release, in index order. Its
// plaintext goes to its place in staging as soon as both are known: the
// plaintext (finish, from a worker or, failing, from the feeder) and the
// place (arm, from the writer); whichever comes second writes it.
type chunkJob struct {
	c      *Chunk
	buf    *[]byte // pooled plaintext buffer holding data
	data   []byte
	err    error
	done   chan struct{} // closed once written (or failed)
	kept   bool          // PlaintextOnly: intact in staging already, nothing to write
	copied bool          // PlaintextOnly: copied from a previous release's tree
	a      *assembly
	// PlaintextOnly (place): once written, the place is recorded and
	// the block it came from (st) forgotten (assembly.placed).
	place bool
	st    *blockState

	mu    sync.Mutex
	ready bool        // finish was called
	dst   *stagedFile // set by arm
	off   int64
}

// finish records the chunk's outcome: its plaintext in buf/data, or err.
func (j *chunkJob) finish(err error) {
	j.mu.Lock()
	j.err, j.ready = err, true
	armed := j.dst != nil
	j.mu.Unlock()
	if armed {
		j.complete()
	}
}

// arm gives the job its place: offset off of f.
func (j *chunkJob) arm(f *stagedFile, off int64) {
	j.mu.Lock()
	j.dst, j.off = f, off
	ready := j.ready
	j.mu.Unlock()
	if ready {
		j.complete()
	}
}

// complete writes the plaintext (unless the chunk failed), returns its
// buffer, releases the file and marks the job done.
func (j *chunkJob) complete() {
	if j.err == nil && !j.kept {
		j.err = j.dst.writeAt(j.data, j.off)
		if j.err == nil && j.place {
			j.a.placed(j)
		}
	}
	if j.err == nil && j.a != nil && j.a.staged != nil {
		j.a.staged.mark(j.dst.entry, j.off, j.c.CID)
	}
	if j.buf != nil {
		putChunkBuf(j.buf)
		j.buf, j.data = nil, nil
	}
	if err := j.dst.release(); err != nil && j.err == nil {
		j.err = err
	}
	close(j.done)
}

// blockState is one block a window needs: from the store or the source.
// Jobs wait on it until its verified ciphertext is known (or it failed).
type blockState struct {
	c        cid.Cid
	local    bool
	received bool // from the source (feeder's receiver only)
	mu       sync.Mutex
	resolved bool
	data     []byte
	err      error
	waiting  []*chunkJob
	// PlaintextOnly, under assembly.mu: the received block, stored only
	// if no chunk of it was written when the run ends (placed false).
	block  blocks.Block
	placed bool
}

// task is work for a worker: verify (and for local blocks load) st's
// block, or decrypt job from already verified data.
type task struct {
	st   *blockState
	b    blocks.Block // st's block as received from the source
	job  *chunkJob
	data []byte
	copy *plainCopy // PlaintextOnly: job's plaintext is on disk here
}

// run assembles entries from..end. It returns the index of the entry it
// stopped at, with the error that stopped it.
func (a *assembly) run(parent context.Context, from uint64, st *AssembleStats) (uint64, error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	a.ctx, a.cancel = ctx, cancel
	a.inflight = map[cid.Cid]*blockState{}
	a.tasks = make(chan task, a.workers)
	a.ordered = make(chan *chunkJob, a.window)
	stored := a.stored
	if a.plain {
		// Fetches are counted as they are verified; the writer only
		// takes what a stopped run could not write (spill).
		stored = nil
		if err := a.scanStaging(from); err != nil {
			return from, err
		}
		a.scan = true // a run after this one finds its work in staging
	}
	a.w = newBlockWriter(ctx, a.f.store, assembleBatch, cancel, stored)
	// As in Publish: the worker that just hashed a block computes what
	// the store needs of its bytes (the pack record's checksum) while they
	// are in its cache, not the store's one writing goroutine.
	a.prepare = preparer(a.f.store)

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
	if a.plain {
		a.spill()
	}
	for _, f := range a.unclosed {
		f.f.Close() // may be closed already: harmless
	}
	a.unclosed = nil
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
		job := &chunkJob{c: c, done: make(chan struct{}), a: a}
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
		if a.plain && a.isKept(n) {
			job.kept = true
			job.finish(nil)
			continue
		}
		s, cp, added, ok := a.state(c.CID)
		if !ok {
			job.finish(s.err)
			return
		}
		if cp != nil {
			select {
			case a.tasks <- task{job: job, copy: cp}:
				continue
			case <-a.ctx.Done():
				job.finish(context.Cause(a.ctx))
				return
			}
		}
		if !a.attach(s, job) {
			return
		}
		if s.local { // a new state each time: loaded once per chunk
			if !a.load(s) {
				return
			}
		} else if added {
			missing = append(missing, s)
			if len(missing) >= a.window {
				ask()
			}
		}
	}
}

// state returns the block state of c: one already in flight, or a new
// one, from the store (local) or to ask for (added to inflight: the
// caller asks the source for it). It fails (ok false, with the error in
// the returned state) when the store does not answer. With PlaintextOnly
// it returns instead (cp) a place in staging that holds c's plaintext,
// when a chunk of c was written there: looked up under the same lock as
// inflight, since a state leaves inflight once written (placed).
func (a *assembly) state(c cid.Cid) (s *blockState, cp *plainCopy, added, ok bool) {
	a.mu.Lock()
	s = a.inflight[c]
	if s == nil && a.plain {
		cp = a.stagedCopy(c)
	}
	a.mu.Unlock()
	if s != nil || cp != nil {
		return s, cp, false, true
	}
	has, err := a.f.store.Has(a.ctx, c)
	if err != nil {
		return &blockState{c: c, err: fmt.Errorf("local store: %w", err)}, nil, false, false
	}
	if !has && a.previous != nil {
		if cp := a.previous.copyOf(c); cp != nil {
			return nil, cp, false, true
		}
	}
	s = &blockState{c: c, local: has}
	if !has {
		a.mu.Lock()
		a.inflight[c] = s
		a.mu.Unlock()
	}
	return s, nil, !has, true
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
	if a.plain {
		job.place, job.st = true, s
	}
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
		if t.copy != nil {
			a.copyChunk(t.job, t.copy)
			continue
		}
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
			// A block the source hashed already (Verified: bitswap's
			// decoder) is not hashed again; any other is.
			data = t.b.RawData()
			if err = verifyReceived(s.c, t.b); err == nil {
				if a.plain {
					a.received(s, t.b)
				} else {
					a.w.add(a.prepare(t.b))
				}
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
