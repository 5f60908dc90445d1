package store

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/datastore/dshelp"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	leveldb "github.com/ipfs/go-ds-leveldb"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/content/atomicfile"
	"github.com/meshota/meshota/protocol/codec"
)

// DefaultKeep is how many releases per channel GC retains: the current one
// and the previous one (for rollback).
const DefaultKeep = 2

// Pin names one retained release of a channel by its block list root.
type Pin struct {
	Channel   string  `cbor:"1,keyasint"`
	Sequence  uint64  `cbor:"2,keyasint"`
	BlockList cid.Cid `cbor:"3,keyasint"`
	// Extra lists blocks the release needs that its block list does not
	// name: the keyring (root and shards) its manifest points to.
	Extra []cid.Cid `cbor:"4,keyasint,omitempty"`
}

type pinFile struct {
	Pins []Pin `cbor:"1,keyasint"`
}

// Backend selects the datastore under the blockstore.
type Backend int

const (
	// Default is Pack, except that a store an older version created with
	// the flat layout (dir/blocks and no dir/packs) opens as Flat.
	Default Backend = iota
	// Pack appends blocks to pack files with an index in memory; chosen
	// by measurement (docs/CONTENT.md).
	Pack
	// Flat keeps one file per block (synced temp file + rename), the
	// layout of earlier versions; kept for them and for comparison.
	Flat
	// LevelDB is go-ds-leveldb with synced writes, kept for comparison.
	LevelDB
)

// Options configure Open; the zero value is the default.
type Options struct {
	Backend Backend
	Logger  *slog.Logger
}

// Store is a blockstore on disk with pins.
type Store struct {
	dir string
	ds  io.Closer
	bs  blockstore.Blockstore
	mu  sync.Mutex // pins and GC
	log *slog.Logger
}

// Open opens (creating if needed) the store in dir: blocks under
// dir/packs (or dir/blocks, dir/leveldb), pins in dir/pins.
func Open(dir string, opt Options) (*Store, error) {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	b := opt.Backend
	if b == Default {
		b = Pack
		if isDir(filepath.Join(dir, "blocks")) && !isDir(filepath.Join(dir, "packs")) {
			b = Flat
		}
	}
	switch b {
	case Pack:
		pd, err := openPackDir(filepath.Join(dir, "packs"), log, true)
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
		return &Store{dir: dir, ds: pd, bs: copyingBlockstore{blockstore.NewBlockstore(pd, blockstore.NoPrefix()), pd}, log: log}, nil
	case Flat:
		fd, err := openFlatDir(filepath.Join(dir, "blocks"))
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
		return &Store{dir: dir, ds: fd, bs: blockstore.NewBlockstore(fd, blockstore.NoPrefix()), log: log}, nil
	case LevelDB:
		ldb, err := leveldb.NewDatastore(filepath.Join(dir, "leveldb"), nil) // writes are synced
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
		return &Store{dir: dir, ds: ldb, bs: blockstore.NewBlockstore(ldb), log: log}, nil
	}
	return nil, fmt.Errorf("open store: unknown backend %d", opt.Backend)
}

// copyingBlockstore is the blockstore of a pack store, which copies a
// block's bytes into its aligned write buffer and keeps no reference to
// them: content.Publish then reuses its block buffers.
type copyingBlockstore struct {
	blockstore.Blockstore
	pd *packDir
}

// CopiesBlocks says that the bytes of a stored block may be reused once
// Put or PutMany returns.
func (copyingBlockstore) CopiesBlocks() bool { return true }

// PrepareBlock returns b with the CRC-32C its pack record carries. Call it
// where b's bytes were just written (content.Publish's workers, right
// after sealing and hashing the block): there they are in the CPU's
// cache, and the checksum costs about a quarter of what it costs on the
// store's one writing goroutine, which reads them from memory (≈ 6 % of
// publishing's CPU, docs/CONTENT.md). b's bytes must not change until it
// is stored.
func (copyingBlockstore) PrepareBlock(b blocks.Block) blocks.Block {
	if _, ok := b.(checkedBlock); ok {
		return b
	}
	return checkedBlock{Block: b, crc: valueCRC(b.RawData())}
}

// checkedBlock is a block with its value's CRC-32C (PrepareBlock).
type checkedBlock struct {
	blocks.Block
	crc uint32
}

// PutMany is boxo's blockstore PutMany (keys without prefix, blocks
// already present skipped, one batch: one append and one fdatasync) that
// takes the CRC of a checkedBlock instead of computing it again.
func (c copyingBlockstore) PutMany(ctx context.Context, bs []blocks.Block) error {
	t := &packBatch{d: c.pd}
	for _, b := range bs {
		k := dshelp.MultihashToDsKey(b.Cid().Hash())
		if has, err := c.pd.Has(ctx, k); err == nil && has {
			continue // already stored
		}
		var err error
		if cb, ok := b.(checkedBlock); ok {
			err = t.putChecked(k, b.RawData(), cb.crc)
		} else {
			err = t.Put(ctx, k, b.RawData())
		}
		if err != nil {
			return err
		}
	}
	return t.Commit(ctx)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// Blockstore returns the boxo blockstore, for content and for bitswap.
func (s *Store) Blockstore() blockstore.Blockstore { return s.bs }

// Close closes the datastore.
func (s *Store) Close() error { return s.ds.Close() }

func (s *Store) pinPath() string { return filepath.Join(s.dir, "pins") }

// Pins returns the current pins.
func (s *Store) Pins() ([]Pin, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readPins()
}

func (s *Store) readPins() ([]Pin, error) {
	data, err := os.ReadFile(s.pinPath())
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPins, err)
	}
	var f pinFile
	if err := codec.Unmarshal(data, &f, codec.Limits{MaxBytes: 16 << 20, MaxElements: 1 << 16}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPins, err)
	}
	return f.Pins, nil
}

func (s *Store) writePins(pins []Pin) error {
	slices.SortFunc(pins, func(a, b Pin) int {
		if a.Channel != b.Channel {
			if a.Channel < b.Channel {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Sequence, b.Sequence)
	})
	data, err := codec.Marshal(&pinFile{Pins: pins})
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.pinPath(), data, 0o600); err != nil {
		return fmt.Errorf("write pins: %w", err)
	}
	return nil
}

// Pin retains the release whose block list root is p.BlockList. The block
// list must already be in the store (publish or fetch it first).
func (s *Store) Pin(ctx context.Context, p Pin) error {
	if _, err := content.ReadBlockList(ctx, s.bs, p.BlockList); err != nil {
		return fmt.Errorf("pin %s #%d: %w", p.Channel, p.Sequence, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pins, err := s.readPins()
	if err != nil {
		return err
	}
	pins = slices.DeleteFunc(pins, func(q Pin) bool { return q.Channel == p.Channel && q.Sequence == p.Sequence })
	return s.writePins(append(pins, p))
}

// Unpin drops the pin of a channel's release.
func (s *Store) Unpin(channel string, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	pins, err := s.readPins()
	if err != nil {
		return err
	}
	n := len(pins)
	pins = slices.DeleteFunc(pins, func(q Pin) bool { return q.Channel == channel && q.Sequence == seq })
	if len(pins) == n {
		return fmt.Errorf("%w: %s #%d", ErrNotPinned, channel, seq)
	}
	return s.writePins(pins)
}

// GCStats says what GC did.
type GCStats struct {
	Unpinned      int // pins dropped by the keep policy
	Kept, Removed int // blocks
	// Freed is the bytes of pack files removed or rewritten (Pack only;
	// the other backends free a block's space when it is deleted).
	Freed int64
}

// GC drops all but the keep highest-sequence pins of each channel (keep <= 0
// means DefaultKeep), then deletes every block that no remaining pin's block
// list names. A pin whose block list cannot be read stops GC with an error
// rather than deleting blocks it might need.
func (s *Store) GC(ctx context.Context, keep int) (GCStats, error) {
	var st GCStats
	if keep <= 0 {
		keep = DefaultKeep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pins, err := s.readPins()
	if err != nil {
		return st, err
	}
	perChannel := map[string]int{}
	var kept []Pin
	for i := len(pins) - 1; i >= 0; i-- { // sorted by channel, then sequence
		if perChannel[pins[i].Channel] < keep {
			perChannel[pins[i].Channel]++
			kept = append(kept, pins[i])
		}
	}
	st.Unpinned = len(pins) - len(kept)
	// Keyed by multihash: the blockstore keys blocks by multihash, and its
	// AllKeysChan answers raw CIDv1s whatever CID a block was stored under.
	live := map[string]struct{}{}
	for _, p := range kept {
		l, err := content.ReadBlockList(ctx, s.bs, p.BlockList)
		if err != nil {
			return st, fmt.Errorf("gc: pinned %s #%d: %w; nothing deleted", p.Channel, p.Sequence, err)
		}
		for _, c := range l.All() {
			live[string(c.Hash())] = struct{}{}
		}
		for _, c := range p.Extra {
			live[string(c.Hash())] = struct{}{}
		}
	}
	if st.Unpinned > 0 {
		if err := s.writePins(kept); err != nil {
			return st, err
		}
	}
	keys, err := s.bs.AllKeysChan(ctx)
	if err != nil {
		return st, fmt.Errorf("gc: %w", err)
	}
	var dead []cid.Cid
	for c := range keys {
		if _, ok := live[string(c.Hash())]; ok {
			st.Kept++
		} else {
			dead = append(dead, c)
		}
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	for _, c := range dead {
		if err := s.bs.DeleteBlock(ctx, c); err != nil {
			return st, fmt.Errorf("gc: delete %s: %w", c, err)
		}
		st.Removed++
	}
	if pd, ok := s.ds.(*packDir); ok {
		cs, err := pd.compact(ctx)
		st.Freed = cs.Freed
		if err != nil {
			return st, fmt.Errorf("gc: %w", err)
		}
		s.log.InfoContext(ctx, "compacted packs", "removed", cs.Removed, "rewritten", cs.Rewritten, "freed", cs.Freed)
	}
	s.log.InfoContext(ctx, "garbage collected", "kept", st.Kept, "removed", st.Removed, "unpinned", st.Unpinned)
	return st, nil
}
