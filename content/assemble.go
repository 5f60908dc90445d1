package content

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/crypto"
)

// AssembleOptions tune Assemble; the zero value is fine.
type AssembleOptions struct {
	// Window is how many chunks are requested from the source per
	// GetBlocks call and decrypted in parallel; 0 means 8. Two windows are in flight (one
	// being written, the next being fetched and decrypted): memory is about
	// 4 × Window × MaxChunkSize.
	Window int
	// Workers bounds parallel verification and decryption; 0 means GOMAXPROCS.
	Workers int
	Logger  *slog.Logger
}

// AssembleStats says what one Assemble call did.
type AssembleStats struct {
	Fetched      int64  // blocks fetched from the source (verified and stored)
	FetchedBytes int64  // their bytes
	Written      uint64 // plaintext bytes written to staging
	Skipped      int    // entries already complete from an earlier run
}

// Assemble writes the release described by x into the staging directory,
// fetching missing chunk blocks from src into bs. Every block is verified
// against its CID, every chunk authenticated and checked against its
// plaintext hash, before a byte reaches staging. It is resumable: call it
// again with the same arguments after an interruption; verified blocks are
// in bs and are not fetched again, and entries recorded as complete in the
// progress file (staging + ".progress") are not rewritten. Staging is
// created if needed; if it holds an unfinished assembly of another index it
// is cleared.
func Assemble(ctx context.Context, bs BlockStore, src BlockSource, x *Index, staging string, opt AssembleOptions) (AssembleStats, error) {
	var st AssembleStats
	if err := x.Validate(); err != nil {
		return st, err
	}
	window := opt.Window
	if window <= 0 {
		window = 8
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := newFetcher(bs, src)
	bufs := [2][][]byte{make([][]byte, window), make([][]byte, window)} // plaintext, reused
	defer func() { st.Fetched, st.FetchedBytes = f.fetched.Load(), f.bytes.Load() }()

	id := indexID(x)
	progPath := staging + ".progress"
	done, err := loadProgress(progPath, id)
	if err != nil {
		log.WarnContext(ctx, "ignoring unreadable assembly progress; starting over", "path", progPath, "err", err)
		done = 0
	}
	if done == 0 {
		if err := os.RemoveAll(staging); err != nil {
			return st, fmt.Errorf("clear staging: %w", err)
		}
	}
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return st, fmt.Errorf("create staging: %w", err)
	}
	// A previous run may have stopped while applying final directory modes.
	for i := range x.Entries[:done] {
		if x.Entries[i].Type == TypeDir {
			if err := os.Chmod(filepath.Join(staging, filepath.FromSlash(x.Entries[i].Path)), 0o700); err != nil {
				return st, fmt.Errorf("resume staging: %w", err)
			}
		}
	}
	st.Skipped = int(done)

	var sinceSave uint64
	healed := 0
	for i := done; i < uint64(len(x.Entries)); i++ {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		e := &x.Entries[i]
		dst := filepath.Join(staging, filepath.FromSlash(e.Path))
		if err := clearPath(dst, e.Type); err != nil {
			return st, err
		}
		switch e.Type {
		case TypeDir:
			if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return st, fmt.Errorf("staging: %w", err)
			}
		case TypeSymlink:
			if err := os.Symlink(e.Target, dst); err != nil {
				return st, fmt.Errorf("staging: %w", err)
			}
		case TypeFile:
			n, err := writeFile(ctx, f, x, e, dst, window, workers, &bufs)
			st.Written += n
			if err != nil && healed < maxHeal && f.dropCorrupt(ctx, err) {
				// A damaged local block (disk fault): dropped; fetch it
				// again and redo this file.
				log.WarnContext(ctx, "dropped a corrupt local block; fetching it again", "err", err)
				healed++
				i--
				continue
			}
			if err != nil {
				return st, fmt.Errorf("assemble %s: %w", e.Path, err)
			}
			sinceSave += n + 4096
		}
		if sinceSave >= progressEvery {
			if err := saveProgress(progPath, id, i+1); err != nil {
				return st, err
			}
			sinceSave = 0
		}
	}
	for i := len(x.Entries) - 1; i >= 0; i-- {
		if e := &x.Entries[i]; e.Type == TypeDir {
			if err := os.Chmod(filepath.Join(staging, filepath.FromSlash(e.Path)), fs.FileMode(e.Mode)); err != nil {
				return st, fmt.Errorf("staging: %w", err)
			}
		}
	}
	if err := saveProgress(progPath, id, uint64(len(x.Entries))); err != nil {
		return st, err
	}
	log.InfoContext(ctx, "assembled release", "staging", staging, "bytes", st.Written,
		"fetched_blocks", f.fetched.Load(), "skipped_entries", st.Skipped)
	return st, nil
}

// clearPath removes whatever an interrupted run left at dst unless it is a
// directory that should stay one.
func clearPath(dst string, t EntryType) error {
	fi, err := os.Lstat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("staging: %w", err)
	}
	if t == TypeDir && fi.IsDir() {
		return nil
	}
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("staging: %w", err)
	}
	return nil
}

// writeFile assembles one file window by window: fetch the window's missing
// blocks in one GetBlocks call, verify and decrypt them in parallel, write
// them in order.
func writeFile(ctx context.Context, f *fetcher, x *Index, e *Entry, dst string, window, workers int, bufs *[2][][]byte) (uint64, error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return 0, fmt.Errorf("staging: %w", err)
	}
	defer out.Close()
	chunks := x.FileChunks(e)
	var written uint64
	nwin := (len(chunks) + window - 1) / window
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Two buffer sets: window k+1 is fetched, verified and decrypted while
	// window k is written.
	process := func(k int) <-chan error {
		done := make(chan error, 1)
		win := chunks[k*window : min((k+1)*window, len(chunks))]
		b := bufs[k%2]
		go func() {
			cids := make([]cid.Cid, len(win))
			for j, c := range win {
				cids[j] = c.CID
			}
			done <- f.window(ctx, cids, workers, func(j int, ct []byte) error {
				c := &win[j]
				pt, err := crypto.OpenChunk(b[j][:0], &c.Key, x.Channel, ct, c.Hash)
				if err != nil {
					return &BlockError{CID: c.CID, Err: fmt.Errorf("%w: %w", ErrChunkCorrupt, err)}
				}
				if len(pt) != int(c.Len) {
					return &BlockError{CID: c.CID, Err: fmt.Errorf("%w: %d bytes, index says %d", ErrChunkCorrupt, len(pt), c.Len)}
				}
				b[j] = pt
				return nil
			})
		}()
		return done
	}
	var next <-chan error
	if nwin > 0 {
		next = process(0)
	}
	for k := 0; k < nwin; k++ {
		err := <-next
		next = nil
		if err == nil && k+1 < nwin {
			next = process(k + 1)
		}
		if err == nil {
			for j := range min(window, len(chunks)-k*window) {
				if _, werr := out.Write(bufs[k%2][j]); werr != nil {
					err = fmt.Errorf("staging: %w", werr)
					break
				}
				written += uint64(len(bufs[k%2][j]))
			}
		}
		if err != nil {
			cancel()
			if next != nil {
				<-next
			}
			return written, err
		}
	}
	if err := out.Chmod(fs.FileMode(e.Mode)); err != nil {
		return written, fmt.Errorf("staging: %w", err)
	}
	return written, out.Close()
}

// maxHeal bounds how many corrupt local blocks one Assemble call drops and
// fetches again before giving up.
const maxHeal = 16

// progressEvery is how many bytes (files count 4 KiB extra each) are written
// between two progress saves; each save syncs the file system.
var progressEvery uint64 = 64 << 20

// indexID identifies an index for the progress file.
func indexID(x *Index) [32]byte {
	h := sha256.New()
	h.Write([]byte(x.Channel))
	var n [8]byte
	for i := range x.Entries {
		e := &x.Entries[i]
		h.Write([]byte{0, byte(e.Type)})
		h.Write([]byte(e.Path))
		h.Write([]byte{0})
		h.Write([]byte(e.Target))
		binary.BigEndian.PutUint64(n[:], uint64(e.Mode)<<32^e.NumChunks)
		h.Write(n[:])
	}
	for i := range x.Chunks {
		h.Write(x.Chunks[i].CID.Bytes())
	}
	return [32]byte(h.Sum(nil))
}
