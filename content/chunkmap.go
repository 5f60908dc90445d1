package content

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/meshota/meshota/crypto"
)

// ChunkMap serves the chunk blocks of one release from its plaintext on
// disk: a device that assembled with PlaintextOnly keeps no chunk block,
// and chunk encryption is deterministic (crypto.SealChunk), so sealing a
// chunk's plaintext again gives its block byte for byte. Has and GetSize
// answer from memory; Get reads the plaintext, seals it and returns it
// only if it hashes to the CID asked for. A file that no longer gives its
// blocks (changed after install) is dropped from the map and logged: a
// device never serves bytes that are not the release's.
//
// Memory: ≈ 80 bytes per distinct chunk (a sorted table, not a Go map:
// the same size whatever the load factor) plus the file paths.
type ChunkMap struct {
	channel string
	log     *slog.Logger
	files   []mapFile
	chunks  []mapChunk // sorted by digest, one per distinct block
	// A staging map (NewStagingMap) serves only the chunks Assemble
	// marked as being in staging.
	marked []atomic.Bool
}

type mapFile struct {
	path    string
	entry   uint32 // index entry
	dropped atomic.Bool
}

type mapChunk struct {
	digest [32]byte // the block's SHA2-256
	key    crypto.ChunkKey
	off    int64
	file   uint32
	n      uint32 // plaintext length
}

// NewChunkMap maps the chunks of the release x installed (or assembled)
// in dir. It reads the index's chunk list once and no file: a damaged
// file is found when a block of it is asked for.
func NewChunkMap(ctx context.Context, x *Index, dir string, log *slog.Logger) (*ChunkMap, error) {
	return newChunkMap(ctx, x, dir, log)
}

// NewStagingMap maps the chunks of the release x being assembled in
// staging: it serves none until Assemble (given it as
// AssembleOptions.Staged) marks them in staging. Once the release is
// installed, a NewChunkMap of its directory takes its place.
func NewStagingMap(ctx context.Context, x *Index, staging string, log *slog.Logger) (*ChunkMap, error) {
	m, err := newChunkMap(ctx, x, staging, log)
	if err != nil {
		return nil, err
	}
	m.marked = make([]atomic.Bool, len(m.chunks))
	return m, nil
}

func newChunkMap(ctx context.Context, x *Index, dir string, log *slog.Logger) (*ChunkMap, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &ChunkMap{channel: x.Channel, log: log}
	nfiles := 0
	for i := range x.Entries {
		if x.Entries[i].Type == TypeFile && x.Entries[i].NumChunks > 0 {
			nfiles++
		}
	}
	m.files = make([]mapFile, 0, nfiles)
	m.chunks = make([]mapChunk, 0, x.NumChunks())
	cur := x.cursor(ctx)
	for i := range x.Entries {
		e := &x.Entries[i]
		if e.Type != TypeFile || e.NumChunks == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m.files = append(m.files, mapFile{path: filepath.Join(dir, filepath.FromSlash(e.Path)), entry: uint32(i)})
		var off int64
		for k := range e.NumChunks {
			c, err := cur.at(e.FirstChunk + k)
			if err != nil {
				return nil, err
			}
			if d, ok := digestOf(c.CID); ok {
				m.chunks = append(m.chunks, mapChunk{digest: d, key: c.Key, off: off, file: uint32(len(m.files) - 1), n: c.Len})
			}
			off += int64(c.Len)
		}
	}
	// Stable: of a block's copies the first in the index is kept.
	slices.SortStableFunc(m.chunks, func(a, b mapChunk) int { return bytes.Compare(a.digest[:], b.digest[:]) })
	m.chunks = slices.CompactFunc(m.chunks, func(a, b mapChunk) bool { return a.digest == b.digest })
	if len(m.chunks) < cap(m.chunks) {
		// Repeated blocks: give the rest back.
		m.chunks = append(make([]mapChunk, 0, len(m.chunks)), m.chunks...)
	}
	return m, nil
}

// Len returns how many distinct chunk blocks the map can serve, dropped
// files included.
func (m *ChunkMap) Len() int { return len(m.chunks) }

// find returns c's chunk, unless c is not in the map, its file was
// dropped, or (a staging map) it is not known to be in staging yet.
func (m *ChunkMap) find(c cid.Cid) *mapChunk {
	i, ok := m.index(c)
	if !ok || m.files[m.chunks[i].file].dropped.Load() || m.marked != nil && !m.marked[i].Load() {
		return nil
	}
	return &m.chunks[i]
}

// index returns the position of c in the table.
func (m *ChunkMap) index(c cid.Cid) (int, bool) {
	d, ok := digestOf(c)
	if !ok {
		return 0, false
	}
	return slices.BinarySearchFunc(m.chunks, d, func(e mapChunk, d [32]byte) int { return bytes.Compare(e.digest[:], d[:]) })
}

// mark records that block c's plaintext is in staging at offset off of
// index entry entry. The map serves the copy it holds (the block's first
// chunk in the index), so only that place marks it.
func (m *ChunkMap) mark(entry uint32, off int64, c cid.Cid) {
	i, ok := m.index(c)
	if !ok || m.marked == nil {
		return
	}
	if e := &m.chunks[i]; m.files[e.file].entry == entry && e.off == off {
		m.marked[i].Store(true)
	}
}

// Lists reports whether c is a chunk block of the map's release, served
// or not (a dropped file, a chunk not yet in staging): a plaintext-only
// device keeps such a block nowhere but in the release's plaintext.
func (m *ChunkMap) Lists(c cid.Cid) bool {
	_, ok := m.index(c)
	return ok
}

// Has reports whether the map serves c.
func (m *ChunkMap) Has(_ context.Context, c cid.Cid) (bool, error) {
	return m.find(c) != nil, nil
}

// GetSize returns the size of block c.
func (m *ChunkMap) GetSize(_ context.Context, c cid.Cid) (int, error) {
	e := m.find(c)
	if e == nil {
		return -1, notServed(c, "not a chunk of this release")
	}
	return int(e.n) + crypto.ChunkOverhead, nil
}

// Get seals block c again from its plaintext and checks it against c.
// Its cost, paid by the device that serves, is a read, AES-GCM and one
// SHA-256 pass.
func (m *ChunkMap) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	e := m.find(c)
	if e == nil {
		return nil, notServed(c, "not a chunk of this release")
	}
	f := &m.files[e.file]
	buf := getChunkBuf()
	defer putChunkBuf(buf)
	pt := (*buf)[:e.n]
	err := readPlain(f.path, pt, e.off)
	var ct []byte
	if err == nil {
		ct = crypto.SealChunk(make([]byte, 0, int(e.n)+crypto.ChunkOverhead), &e.key, m.channel, pt)
		if sha256.Sum256(ct) != e.digest {
			err = fmt.Errorf("it seals to another block")
		}
	}
	if err != nil {
		m.drop(ctx, f, c, err)
		return nil, notServed(c, "its file changed on disk")
	}
	// The CID asked for: ct hashes to its multihash, whatever its codec.
	b, err := blocks.NewBlockWithCid(ct, c)
	if err != nil {
		return nil, notServed(c, err.Error())
	}
	return b, nil
}

// drop stops using file f, whose chunk c could not be read or checked.
func (m *ChunkMap) drop(ctx context.Context, f *mapFile, c cid.Cid, err error) {
	if !f.dropped.Swap(true) {
		m.log.WarnContext(ctx, "an installed file changed: its chunks are no longer served or copied; reinstall the release to use them again",
			"path", f.path, "block", c, "err", err)
	}
}

// copyOf returns where the newest map holding c has its plaintext, for
// Assemble to copy (and check against the chunk's hash).
func (s *ChunkMaps) copyOf(c cid.Cid) *plainCopy {
	for _, m := range s.find(c) {
		if e := m.find(c); e != nil {
			f := &m.files[e.file]
			return &plainCopy{path: f.path, off: e.off, prev: true, drop: func(err error) {
				m.drop(context.Background(), f, c, err)
			}}
		}
	}
	return nil
}

// notServed is the error of a block a ChunkMap does not serve: a
// BlockError wrapping ErrBlockMissing, and ipld.ErrNotFound, which is
// what boxo's bitswap server expects of a blockstore that lacks a block
// (it then answers DONT_HAVE, and logs nothing).
func notServed(c cid.Cid, why string) error {
	return &BlockError{CID: c, Err: fmt.Errorf("%w: %s: %w", ErrBlockMissing, why, ipld.ErrNotFound{Cid: c})}
}

// ChunkMaps is the set of releases a device serves from plaintext (the
// installed one, the previous one, the one being assembled), safe for
// concurrent use: the agent adds a release's map once it is installed
// and removes it before its directory goes.
type ChunkMaps struct {
	mu   sync.RWMutex
	maps []*ChunkMap
}

// Add serves m's chunks too.
func (s *ChunkMaps) Add(m *ChunkMap) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maps = append(s.maps, m)
}

// Remove stops serving m's chunks.
func (s *ChunkMaps) Remove(m *ChunkMap) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maps = slices.DeleteFunc(s.maps, func(x *ChunkMap) bool { return x == m })
}

// find returns the maps that serve c, newest first.
func (s *ChunkMaps) find(c cid.Cid) []*ChunkMap {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*ChunkMap
	for i := len(s.maps) - 1; i >= 0; i-- {
		if s.maps[i].find(c) != nil {
			out = append(out, s.maps[i])
		}
	}
	return out
}

// Lists reports whether c is a chunk block of one of the maps' releases
// (ChunkMap.Lists).
func (s *ChunkMaps) Lists(c cid.Cid) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, m := range s.maps {
		if m.Lists(c) {
			return true
		}
	}
	return false
}

// Has reports whether a map serves c.
func (s *ChunkMaps) Has(_ context.Context, c cid.Cid) (bool, error) {
	return len(s.find(c)) > 0, nil
}

// GetSize returns the size of block c.
func (s *ChunkMaps) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	if ms := s.find(c); len(ms) > 0 {
		return ms[0].GetSize(ctx, c)
	}
	return -1, notServed(c, "not a chunk of a served release")
}

// Get seals block c again from the first map whose file still gives it.
func (s *ChunkMaps) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	for _, m := range s.find(c) {
		if b, err := m.Get(ctx, c); err == nil {
			return b, nil
		}
	}
	return nil, notServed(c, "not a chunk of a served release")
}

// ServingBlockstore is the blockstore a plaintext-only device gives
// bitswap's server: chunk blocks from maps (sealed again from the
// plaintext), every other block (index pages, block lists, keyrings) and
// every write from under, the device's pack store.
func ServingBlockstore(under blockstore.Blockstore, maps *ChunkMaps) blockstore.Blockstore {
	return &servingStore{Blockstore: under, maps: maps}
}

type servingStore struct {
	blockstore.Blockstore
	maps *ChunkMaps
}

func (s *servingStore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if ok, _ := s.maps.Has(ctx, c); ok {
		return true, nil
	}
	return s.Blockstore.Has(ctx, c)
}

func (s *servingStore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	if n, err := s.maps.GetSize(ctx, c); err == nil {
		return n, nil
	}
	return s.Blockstore.GetSize(ctx, c)
}

func (s *servingStore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if b, err := s.maps.Get(ctx, c); err == nil {
		return b, nil
	}
	return s.Blockstore.Get(ctx, c)
}
