package content

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The writer takes the chunk jobs in index order and creates the entries
// in order (directories, links, files truncated), but does not write the
// chunks itself: it gives each job its file and offset (arm), and the
// worker that decrypts it writes it there with pwrite, so the staging
// writes run on all cores and a chunk that is ready never waits for an
// earlier one. The writer keeps the armed jobs in a queue and takes them
// off its head in order: the entries before the oldest unfinished job are
// complete, and only they are ever claimed by a progress save.

// stagedFile is a staging file that chunks are written into at their
// offsets. It is chmod-ed and closed by whoever releases it last: the
// writer once every chunk is armed, or the last chunk written.
type stagedFile struct {
	f        *os.File
	entry    uint32 // the index entry it is
	mode     fs.FileMode
	pending  atomic.Int64 // chunks not yet written, plus the writer's hold
	unhinted atomic.Int64 // bytes written since the last writeback hint
}

// writebackEvery is how many bytes of a staging file are written before
// the kernel is asked to start writing them out (sync_file_range, no
// wait), so that the syncs of progress saves and of the end find little
// left to write.
const writebackEvery = 8 << 20

func (s *stagedFile) writeAt(p []byte, off int64) error {
	if _, err := s.f.WriteAt(p, off); err != nil {
		return fmt.Errorf("staging: %w", err)
	}
	if s.unhinted.Add(int64(len(p))) >= writebackEvery {
		s.unhinted.Store(0)
		// A hint over the whole file (chunks land out of order; pages
		// already being written are skipped): errors do not matter.
		unix.SyncFileRange(int(s.f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	return nil
}

// release drops one hold; the last one applies the mode and closes.
func (s *stagedFile) release() error {
	if s.pending.Add(-1) != 0 {
		return nil
	}
	err := s.f.Chmod(s.mode)
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("staging: %w", err)
	}
	return nil
}

// armed is a job given its place, with the entry it belongs to.
type armed struct {
	j     *chunkJob
	entry uint64
}

// write creates the entries from..end in staging, in order, and records
// progress. It returns the first entry not known to be complete.
func (a *assembly) write(from uint64, st *AssembleStats) (uint64, error) {
	w := stageWriter{a: a, st: st, saver: a.startSaver(), through: from, max: a.window + 1}
	err := w.run(from)
	// Files whose chunks were not all written (an error stopped the run)
	// are closed by assembly.run once the workers have stopped.
	for _, q := range w.queue {
		a.unclosed = append(a.unclosed, q.j.dst)
	}
	if w.cur != nil {
		a.unclosed = append(a.unclosed, w.cur)
	}
	if serr := w.saver.stop(); err == nil {
		err = serr
	}
	if err == nil {
		err = a.w.flush()
	}
	return w.done(), err
}

type stageWriter struct {
	a       *assembly
	st      *AssembleStats
	saver   *progressSaver
	queue   []armed     // armed jobs not yet seen done, in index order
	max     int         // jobs armed at most at once: a window, plus the one the writer held while it wrote it itself
	through uint64      // entries whose jobs are all armed
	cur     *stagedFile // the file being armed, while the writer holds it
	want    uint64      // a progress save is due once entries < want are done
	since   uint64      // bytes armed since the last save was asked for
}

// run creates and arms the entries from on, then waits for the last
// chunks. On an error, done() is the entry it stopped at.
func (w *stageWriter) run(from uint64) error {
	a := w.a
	for i := from; i < uint64(len(a.x.Entries)); i++ {
		if err := context.Cause(a.ctx); err != nil {
			return err
		}
		e := &a.x.Entries[i]
		dst := filepath.Join(a.staging, filepath.FromSlash(e.Path))
		if err := w.entry(i, e, dst); err != nil {
			return err
		}
		w.through = i + 1
		if w.since >= progressEvery {
			w.want, w.since = i+1, 0
		}
		if err := w.reap(false); err != nil {
			return err
		}
	}
	for len(w.queue) > 0 {
		if err := w.reap(true); err != nil {
			return err
		}
	}
	return nil
}

// done is the number of leading entries that are complete (with a failed
// job at the head of the queue: that job's entry).
func (w *stageWriter) done() uint64 {
	if len(w.queue) > 0 {
		return w.queue[0].entry
	}
	return w.through
}

func (w *stageWriter) entry(i uint64, e *Entry, dst string) error {
	keep := e.Type
	if w.a.plain && e.Type == TypeFile {
		keep = keepFile // its chunks may be intact (scanStaging)
	}
	if err := clearPath(dst, keep); err != nil {
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
		return w.file(i, e, dst)
	}
	return nil
}

// file creates entry i's file and arms a job for each of its chunks.
func (w *stageWriter) file(i uint64, e *Entry, dst string) error {
	out, err := w.a.openStaged(dst, e)
	if err != nil {
		return err
	}
	f := &stagedFile{f: out, mode: fs.FileMode(e.Mode), entry: uint32(i)}
	f.pending.Store(int64(e.NumChunks) + 1)
	w.cur = f
	var off int64
	for range e.NumChunks {
		// Room first: a job taken off ordered lets the feeder queue
		// (and ask for) the next one.
		for len(w.queue) >= w.max {
			if err := w.reap(true); err != nil {
				return err
			}
		}
		j, err := w.next()
		if err != nil {
			return err
		}
		w.queue = append(w.queue, armed{j: j, entry: i})
		j.arm(f, off)
		if j.c != nil { // nil: the feeder failed to read it (j.err)
			off += int64(j.c.Len)
		}
	}
	w.cur = nil
	w.since += uint64(off) + 4096
	return f.release()
}

// next takes the next job in index order, reaping finished jobs while it
// waits: a failed job ends the run even when the feeder stopped after it.
func (w *stageWriter) next() (*chunkJob, error) {
	for {
		var head <-chan struct{}
		if len(w.queue) > 0 {
			head = w.queue[0].j.done
		}
		select {
		case j := <-w.a.ordered:
			return j, nil
		case <-head:
			if err := w.reap(false); err != nil {
				return nil, err
			}
		case <-w.a.ctx.Done():
			return nil, context.Cause(w.a.ctx)
		}
	}
}

// reap takes the jobs that are done off the head of the queue (with wait,
// it first waits for the head) and asks for a progress save when one is
// due and the entries it claims are complete. A failed job stays at the
// head and its error is returned.
func (w *stageWriter) reap(wait bool) error {
	a := w.a
	for len(w.queue) > 0 {
		h := w.queue[0]
		if wait {
			select {
			case <-h.j.done:
			case <-a.ctx.Done():
				return context.Cause(a.ctx)
			}
			wait = false
		} else {
			select {
			case <-h.j.done:
			default:
				return w.maybeSave()
			}
		}
		if h.j.err != nil {
			return h.j.err
		}
		switch {
		case h.j.kept:
			w.st.Kept += uint64(h.j.c.Len)
		case h.j.copied:
			w.st.Copied += uint64(h.j.c.Len)
			w.st.Written += uint64(h.j.c.Len)
		default:
			w.st.Written += uint64(h.j.c.Len)
		}
		w.queue[0] = armed{}
		w.queue = w.queue[1:]
	}
	return w.maybeSave()
}

func (w *stageWriter) maybeSave() error {
	if w.want == 0 || w.done() < w.want {
		return nil
	}
	w.want = 0
	return w.saver.save(w.done())
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
