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
)

// AssembleOptions tune Assemble; the zero value is fine.
type AssembleOptions struct {
	// Window bounds the chunks (across files) requested from the source
	// per GetBlocks call; 0 means 8. Up to 2 × Window chunks are in flight
	// between the fetch and the ordered write, and as the writer takes one
	// the next is requested (a sliding window): memory is about 2 × Window
	// × MaxChunkSize of plaintext plus 24 blocks queued for the store.
	Window int
	// Workers bounds parallel verification and decryption; 0 means GOMAXPROCS.
	Workers int
	// PlaintextOnly keeps no chunk block in bs (index pages still go
	// there): the staging tree is the record. A device that keeps only
	// plaintext writes each byte durably once instead of twice, and
	// serves chunk blocks to peers by sealing them again (ChunkMap). A
	// resumed run hashes the staging files it did not record as complete:
	// a chunk whose plaintext there hashes to the index's hash is kept,
	// anything else is fetched. Blocks received but not yet written when
	// a run stops early go to bs, so that they are not fetched again
	// (they stay until the release is collected).
	PlaintextOnly bool
	// Previous (with PlaintextOnly) maps the releases installed on the
	// device: a chunk found there is copied from its plaintext (read and
	// checked against the chunk's hash) instead of fetched, the delta
	// between releases. A file there that changed is dropped from its
	// map, and the chunk fetched.
	Previous *ChunkMaps
	// Staged (with PlaintextOnly), a map of this release over staging
	// (NewStagingMap), is told of each chunk once its plaintext is there
	// (recorded complete by an earlier run, written, copied or found
	// intact), so that a plaintext-only device serves the chunks of the
	// release it is assembling. (Without PlaintextOnly a resumed run
	// truncates files it rewrites, which would take served chunks away.)
	Staged *ChunkMap
	Logger *slog.Logger
}

// AssembleStats says what one Assemble call did.
type AssembleStats struct {
	Fetched      int64  // blocks fetched from the source (verified and stored)
	FetchedBytes int64  // their bytes
	Written      uint64 // plaintext bytes written to staging
	Kept         uint64 // plaintext bytes found intact in staging by a resumed PlaintextOnly run
	Copied       uint64 // plaintext bytes copied from Previous's trees
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
	if err := x.validate(ctx); err != nil {
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
	defer func() { st.Fetched, st.FetchedBytes = f.fetched.Load(), f.bytes.Load() }()

	id, err := indexID(ctx, x)
	if err != nil {
		return st, err
	}
	progPath := staging + ".progress"
	done, ours, err := loadProgress(progPath, id)
	if err != nil {
		log.WarnContext(ctx, "ignoring unreadable assembly progress; starting over", "path", progPath, "err", err)
		done, ours = 0, false
	}
	// With blocks in the store, a run that recorded nothing rewrites
	// everything from them. Without, staging is the record from the first
	// chunk on, so it is kept whenever the progress file says it holds
	// this index's work, and a fresh one is claimed at once.
	if done == 0 && (!opt.PlaintextOnly || !ours) {
		if err := os.RemoveAll(staging); err != nil {
			return st, fmt.Errorf("clear staging: %w", err)
		}
	}
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return st, fmt.Errorf("create staging: %w", err)
	}
	if opt.PlaintextOnly && !ours {
		if err := saveProgress(progPath, id, 0); err != nil {
			return st, err
		}
	}
	if err := reopenDirs(staging, x, done); err != nil {
		return st, err
	}
	st.Skipped = int(done)

	a := &assembly{f: f, x: x, staging: staging, window: window, workers: workers, progPath: progPath, id: id, plain: opt.PlaintextOnly, scan: ours}
	if opt.PlaintextOnly {
		a.previous, a.staged = opt.Previous, opt.Staged
		if err := a.markDone(ctx, done); err != nil {
			return st, err
		}
	}
	for healed := 0; ; {
		at, err := a.run(ctx, done, &st)
		if err != nil && healed < maxHeal && errors.Is(err, errPlainChanged) {
			// A plaintext copy source changed under us: the next run
			// hashes staging again and fetches what no longer matches.
			log.WarnContext(ctx, "a chunk to copy changed on disk; fetching it again", "err", err)
			healed++
			done = at
			continue
		}
		if err != nil && healed < maxHeal && f.dropCorrupt(ctx, err) {
			// A damaged local block (disk fault): dropped; fetch it again
			// and redo the entry that needed it.
			log.WarnContext(ctx, "dropped a corrupt local block; fetching it again", "err", err)
			healed++
			done = at
			continue
		}
		if err != nil {
			if at < uint64(len(x.Entries)) {
				return st, fmt.Errorf("assemble %s: %w", x.Entries[at].Path, err)
			}
			return st, err
		}
		break
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

// reopenDirs makes staging's directories writable again for a resumed
// run. A previous run may have stopped while applying the final directory
// modes, which it does after its last progress save: directories past done
// may carry a read-only release mode too, and a non-root agent could then
// never create the files they hold. Those past done are changed only when
// they are directories (never through a symlink a stopped run left).
func reopenDirs(staging string, x *Index, done uint64) error {
	for i := range x.Entries {
		if x.Entries[i].Type != TypeDir {
			continue
		}
		p := filepath.Join(staging, filepath.FromSlash(x.Entries[i].Path))
		if uint64(i) >= done {
			if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
				continue // the writer makes it, or replaces what is there
			}
		}
		if err := os.Chmod(p, 0o700); err != nil {
			return fmt.Errorf("resume staging: %w", err)
		}
	}
	return nil
}

// clearPath removes whatever an interrupted run left at dst unless it is a
// directory that should stay one, or (keepFile) a regular file.
func clearPath(dst string, t EntryType) error {
	fi, err := os.Lstat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("staging: %w", err)
	}
	if t == TypeDir && fi.IsDir() || t == keepFile && fi.Mode().IsRegular() {
		return nil
	}
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("staging: %w", err)
	}
	return nil
}

// maxHeal bounds how many corrupt local blocks one Assemble call drops and
// fetches again before giving up.
const maxHeal = 16

// progressEvery is how many bytes (files count 4 KiB extra each) are written
// between two progress saves; each save syncs the file system.
var progressEvery uint64 = 64 << 20

// indexID identifies an index for the progress file.
func indexID(ctx context.Context, x *Index) ([32]byte, error) {
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
	cur := x.cursor(ctx)
	for i := range x.NumChunks() {
		c, err := cur.at(i)
		if err != nil {
			return [32]byte{}, err
		}
		h.Write(c.CID.Bytes())
	}
	return [32]byte(h.Sum(nil)), nil
}
