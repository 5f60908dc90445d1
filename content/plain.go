package content

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/crypto"
)

// Assembly with PlaintextOnly (docs/CONTENT.md, "A device that keeps
// plaintext only"): the staging tree is the record. No chunk block goes
// to the store, so a device writes each byte durably once, not twice;
// what a restarted run may skip is decided by hashing staging, since the
// index holds every chunk's plaintext hash.
//
//   - Before a resumed run, scanStaging hashes every chunk of the files
//     not recorded as complete; a chunk that matches is kept (never
//     fetched) and its place is remembered.
//   - A block is verified, decrypted and written as in the other mode;
//     once one chunk of it is written, its place is remembered and the
//     block forgotten (placed), so a later chunk with the same block (a
//     zero run, a repeated file) is copied from staging, checked against
//     its plaintext hash, instead of being fetched again.
//   - A block received but not written when a run stops (a cancellation
//     or an error before its place in staging was known) is stored in bs
//     as in the other mode (spill): a block received is never fetched
//     twice. The next run loads it from there. At most two windows per
//     interruption; they stay until the release is collected.

// keepFile is clearPath's instruction to keep a regular file as it is.
const keepFile EntryType = 0xff

// errPlainChanged reports plaintext on disk that no longer hashes to the
// chunk it held: Assemble hashes staging again and fetches what changed.
var errPlainChanged = errors.New("plaintext on disk changed since it was checked")

// plainLoc is where a chunk's plaintext lies in staging.
type plainLoc struct {
	off   int64
	entry uint32
}

// plainCopy is a chunk's plaintext on disk, to read and check.
type plainCopy struct {
	path string
	off  int64
	prev bool        // in a previous release's tree
	drop func(error) // a previous release's: stop using the file
}

// digestOf returns the SHA2-256 digest of a CID of the form content
// uses (any codec: the multihash names the bytes).
func digestOf(c cid.Cid) ([32]byte, bool) {
	var d [32]byte
	h := c.Hash()
	if len(h) != 34 || h[0] != 0x12 || h[1] != 0x20 {
		return d, false
	}
	copy(d[:], h[2:])
	return d, true
}

// scanStaging prepares a PlaintextOnly run from entry from: when staging
// may hold this index's work, it hashes each chunk of the files from
// there on and keeps those that match.
func (a *assembly) scanStaging(from uint64) error {
	first := a.firstChunk(from)
	a.keptBase = first
	a.kept = make([]bool, a.x.NumChunks()-first)
	a.written = map[[32]byte]plainLoc{}
	if !a.scan {
		return nil
	}
	buf := getChunkBuf()
	defer putChunkBuf(buf)
	cur := a.x.cursor(a.ctx)
	for i := from; i < uint64(len(a.x.Entries)); i++ {
		e := &a.x.Entries[i]
		if e.Type != TypeFile || e.NumChunks == 0 {
			continue
		}
		if err := context.Cause(a.ctx); err != nil {
			return err
		}
		if err := a.scanFile(i, e, cur, *buf); err != nil {
			return err
		}
	}
	return nil
}

// scanFile hashes the chunks of entry i found in its staging file.
func (a *assembly) scanFile(i uint64, e *Entry, cur *chunkCursor, buf []byte) error {
	p := filepath.Join(a.staging, filepath.FromSlash(e.Path))
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return nil // nothing to keep; the writer replaces it
	}
	if fi.Mode().Perm()&0o600 != 0o600 {
		// A file finished before the stop has its release mode; the
		// writer opens it again to write the rest.
		if err := os.Chmod(p, 0o600); err != nil {
			return fmt.Errorf("staging: %w", err)
		}
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	var off int64
	for k := range e.NumChunks {
		c, err := cur.at(e.FirstChunk + k)
		if err != nil {
			return err
		}
		if off+int64(c.Len) > fi.Size() {
			break
		}
		b := buf[:c.Len]
		if _, err := f.ReadAt(b, off); err != nil {
			break
		}
		if crypto.HashChunk(b) == c.Hash {
			a.kept[e.FirstChunk+k-a.keptBase] = true
			if d, ok := digestOf(c.CID); ok {
				if _, dup := a.written[d]; !dup {
					a.written[d] = plainLoc{off: off, entry: uint32(i)}
				}
			}
		}
		off += int64(c.Len)
	}
	return nil
}

// markDone tells the staging map (if any) of the chunks of the entries
// an earlier run recorded as complete: this run does not visit them.
func (a *assembly) markDone(ctx context.Context, done uint64) error {
	if a.staged == nil {
		return nil
	}
	cur := a.x.cursor(ctx)
	for i := range a.x.Entries[:done] {
		e := &a.x.Entries[i]
		var off int64
		for k := range e.NumChunks {
			c, err := cur.at(e.FirstChunk + k)
			if err != nil {
				return err
			}
			a.staged.mark(uint32(i), off, c.CID)
			off += int64(c.Len)
		}
	}
	return nil
}

// isKept reports whether chunk n was found intact in staging.
func (a *assembly) isKept(n uint64) bool {
	return n >= a.keptBase && n-a.keptBase < uint64(len(a.kept)) && a.kept[n-a.keptBase]
}

// stagedCopy returns where c's plaintext was written in staging, if it
// was. The caller holds a.mu.
func (a *assembly) stagedCopy(c cid.Cid) *plainCopy {
	d, ok := digestOf(c)
	if !ok {
		return nil
	}
	loc, ok := a.written[d]
	if !ok {
		return nil
	}
	return &plainCopy{path: filepath.Join(a.staging, filepath.FromSlash(a.x.Entries[loc.entry].Path)), off: loc.off}
}

// received counts a verified block from the source and keeps it on its
// state until one of its chunks is written.
func (a *assembly) received(s *blockState, b blocks.Block) {
	a.f.fetched.Add(1)
	a.f.bytes.Add(int64(len(b.RawData())))
	a.mu.Lock()
	s.block = b
	a.mu.Unlock()
}

// placed records that j's plaintext is written: later chunks of the same
// block copy it from there, and its block is forgotten.
func (a *assembly) placed(j *chunkJob) {
	d, ok := digestOf(j.c.CID)
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, dup := a.written[d]; ok && !dup {
		a.written[d] = plainLoc{off: j.off, entry: j.dst.entry}
	}
	if s := j.st; s != nil {
		s.placed, s.block = true, nil
		if a.inflight[s.c] == s {
			delete(a.inflight, s.c)
		}
	}
}

// spill stores the blocks received in this run of which no chunk was
// written, so that the next run does not fetch them again. It runs once
// the workers have stopped.
func (a *assembly) spill() {
	a.mu.Lock()
	var left []blocks.Block
	for _, s := range a.inflight {
		if s.block != nil && !s.placed {
			left = append(left, s.block)
		}
	}
	a.mu.Unlock()
	for _, b := range left {
		a.w.add(a.prepare(b))
	}
}

// copyChunk reads j's plaintext from cp and checks it against the
// chunk's hash.
func (a *assembly) copyChunk(j *chunkJob, cp *plainCopy) {
	if err := context.Cause(a.ctx); err != nil {
		j.finish(err)
		return
	}
	c := j.c
	buf := getChunkBuf()
	pt := (*buf)[:c.Len]
	err := readPlain(cp.path, pt, cp.off)
	if err == nil && crypto.HashChunk(pt) != c.Hash {
		err = errors.New("it no longer hashes to the chunk")
	}
	if err != nil {
		putChunkBuf(buf)
		if cp.drop != nil {
			cp.drop(err)
		}
		j.finish(&BlockError{CID: c.CID, Err: fmt.Errorf("%w: %s at %d: %w", errPlainChanged, cp.path, cp.off, err)})
		return
	}
	j.buf, j.data, j.copied = buf, pt, cp.prev
	if cp.prev {
		// Later chunks of this block copy it from staging, as if fetched.
		j.place = true
	}
	j.finish(nil)
}

// readPlain reads len(b) bytes at off of the file at p, not following a
// symlink there.
func readPlain(p string, b []byte, off int64) error {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.ReadAt(b, off)
	return err
}

// openStaged opens entry e's staging file for the writer: truncated,
// or with PlaintextOnly kept as it is (its chunks may be intact) but
// never longer than e.
func (a *assembly) openStaged(dst string, e *Entry) (*os.File, error) {
	if !a.plain {
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return nil, fmt.Errorf("staging: %w", err)
		}
		return f, nil
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if errors.Is(err, os.ErrPermission) {
		// Finished before the stop, with its release mode.
		if err = os.Chmod(dst, 0o600); err == nil {
			f, err = os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("staging: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && uint64(fi.Size()) > e.Size {
		err = f.Truncate(int64(e.Size))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("staging: %w", err)
	}
	return f, nil
}
