package content

import (
	"context"
	"fmt"
	"path"
	"slices"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/meshota/meshota/crypto"
)

// EntryType says what an index entry is.
type EntryType uint8

// Entry types. Anything else is refused at publish and at decode.
const (
	TypeFile    EntryType = 1
	TypeDir     EntryType = 2
	TypeSymlink EntryType = 3
)

func (t EntryType) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Entry is one file, directory or symlink of a release. A file's content is
// the chunks Chunks[FirstChunk : FirstChunk+NumChunks] of the index.
type Entry struct {
	Path       string    `cbor:"1,keyasint"`
	Type       EntryType `cbor:"2,keyasint"`
	Mode       uint32    `cbor:"3,keyasint"` // permission bits (0o777)
	Size       uint64    `cbor:"4,keyasint,omitempty"`
	Target     string    `cbor:"5,keyasint,omitempty"` // symlinks only
	FirstChunk uint64    `cbor:"6,keyasint,omitempty"`
	NumChunks  uint64    `cbor:"7,keyasint,omitempty"`
}

// Chunk is one encrypted chunk: its block CID, plaintext hash and length,
// and the key that opens it.
type Chunk struct {
	CID  cid.Cid          `cbor:"1,keyasint"`
	Hash crypto.ChunkHash `cbor:"2,keyasint"`
	Len  uint32           `cbor:"3,keyasint"`
	Key  crypto.ChunkKey  `cbor:"4,keyasint"`
}

// Index is a decrypted release index: the entries in walk order (every
// parent directory before its children) and the ordered chunk list.
//
// The chunk list is held in Chunks when the index was built in memory
// (Publish: about 150 bytes per chunk). An index opened by OpenIndex leaves
// Chunks nil and streams its chunk list page by page (≈ 4 000 chunks a
// page) from the sealed pages in the store, so a device holds the entries
// and one or two pages whatever the size of the release.
type Index struct {
	Channel string
	Entries []Entry
	Chunks  []Chunk
	pages   *indexPages
}

// indexPages reads the chunk list of an opened index from its pages.
type indexPages struct {
	key   crypto.SymmetricKey
	refs  []pageRef
	first []uint64 // chunk number of each page's first chunk
	total uint64
	// load returns the sealed page block c, verified against c.
	load func(ctx context.Context, c cid.Cid) ([]byte, error)
}

// NumChunks returns the length of the chunk list.
func (x *Index) NumChunks() uint64 {
	if x.pages != nil {
		return x.pages.total
	}
	return uint64(len(x.Chunks))
}

// chunkCursor reads the chunk list in order, one page at a time.
type chunkCursor struct {
	x    *Index
	ctx  context.Context
	cur  []Chunk
	base uint64 // chunk number of cur[0]
}

func (x *Index) cursor(ctx context.Context) *chunkCursor {
	return &chunkCursor{x: x, ctx: ctx}
}

// at returns chunk n (n < NumChunks). The chunk stays valid after the
// cursor moves on; reading backwards is allowed but reloads pages.
func (c *chunkCursor) at(n uint64) (*Chunk, error) {
	p := c.x.pages
	if p == nil {
		return &c.x.Chunks[n], nil
	}
	if n < c.base || n >= c.base+uint64(len(c.cur)) {
		i, _ := slices.BinarySearch(p.first, n+1) // the last page starting at or before n
		i--
		ref := p.refs[i]
		data, err := p.load(c.ctx, ref.CID)
		if err != nil {
			return nil, fmt.Errorf("index page %d: %w", i, err)
		}
		page, err := decodeIndexPage(data, &p.key, c.x.Channel, uint64(i), ref)
		if err != nil {
			return nil, err
		}
		c.cur, c.base = page.Chunks, p.first[i]
	}
	return &c.cur[n-c.base], nil
}

// Size returns the total plaintext size of the release's files.
func (x *Index) Size() uint64 {
	var n uint64
	for i := range x.Entries {
		n += x.Entries[i].Size
	}
	return n
}

// Validate checks what every consumer of an index relies on: safe unique
// paths, each parent a directory listed earlier, symlinks inside the tree,
// file chunk ranges that tile the chunk list in order, sizes that add up,
// chunk lengths within MaxChunkSize and raw SHA2-256 CIDv1 block CIDs.
func (x *Index) Validate() error { return x.validate(context.Background()) }

func (x *Index) validate(ctx context.Context) error {
	total := x.NumChunks()
	dirs := make(map[string]bool, 16)
	seen := make(map[string]bool, len(x.Entries))
	var next uint64
	for i := range x.Entries {
		e := &x.Entries[i]
		if err := CheckPath(e.Path); err != nil {
			return fmt.Errorf("%w: entry %d: %w", ErrIndexMalformed, i, err)
		}
		if seen[e.Path] {
			return fmt.Errorf("%w: entry %d: %w: %q", ErrIndexMalformed, i, ErrDuplicatePath, e.Path)
		}
		seen[e.Path] = true
		if parent := path.Dir(e.Path); parent != "." && !dirs[parent] {
			return fmt.Errorf("%w: entry %q: parent %q is not a directory listed before it", ErrIndexMalformed, e.Path, parent)
		}
		if e.Mode&^0o777 != 0 {
			return fmt.Errorf("%w: entry %q: mode %o has bits beyond 0777", ErrIndexMalformed, e.Path, e.Mode)
		}
		switch e.Type {
		case TypeDir:
			dirs[e.Path] = true
			if e.Size != 0 || e.NumChunks != 0 || e.Target != "" || e.FirstChunk != 0 {
				return fmt.Errorf("%w: directory %q carries file fields", ErrIndexMalformed, e.Path)
			}
		case TypeSymlink:
			if err := CheckSymlink(e.Path, e.Target); err != nil {
				return fmt.Errorf("%w: %w", ErrIndexMalformed, err)
			}
			if e.Size != 0 || e.NumChunks != 0 || e.FirstChunk != 0 {
				return fmt.Errorf("%w: symlink %q carries file fields", ErrIndexMalformed, e.Path)
			}
		case TypeFile:
			if e.Target != "" {
				return fmt.Errorf("%w: file %q carries a symlink target", ErrIndexMalformed, e.Path)
			}
			if e.NumChunks == 0 && e.FirstChunk != 0 {
				return fmt.Errorf("%w: empty file %q has a chunk offset", ErrIndexMalformed, e.Path)
			}
			if e.NumChunks > 0 {
				if e.FirstChunk != next || e.NumChunks > total-next {
					return fmt.Errorf("%w: file %q chunk range [%d,+%d) does not follow %d within %d chunks", ErrIndexMalformed, e.Path, e.FirstChunk, e.NumChunks, next, total)
				}
				next += e.NumChunks
			} else if e.Size != 0 {
				return fmt.Errorf("%w: file %q of %d bytes has no chunks", ErrIndexMalformed, e.Path, e.Size)
			}
		default:
			return fmt.Errorf("%w: entry %q has unknown type %d", ErrIndexMalformed, e.Path, e.Type)
		}
	}
	if next != total {
		return fmt.Errorf("%w: %d chunks listed but files use %d", ErrIndexMalformed, total, next)
	}
	// The files' ranges tile the chunk list: one pass over the files
	// checks every chunk once, page by page for an opened index.
	cur := x.cursor(ctx)
	for i := range x.Entries {
		e := &x.Entries[i]
		if e.Type != TypeFile {
			continue
		}
		var sum uint64
		for n := e.FirstChunk; n < e.FirstChunk+e.NumChunks; n++ {
			c, err := cur.at(n)
			if err != nil {
				return err
			}
			if c.Len == 0 || c.Len > MaxChunkSize {
				return fmt.Errorf("%w: chunk %d has length %d (want 1..%d)", ErrIndexMalformed, n, c.Len, MaxChunkSize)
			}
			if err := checkRawCID(c.CID); err != nil {
				return fmt.Errorf("%w: chunk %d: %w", ErrIndexMalformed, n, err)
			}
			sum += uint64(c.Len)
		}
		if sum != e.Size {
			return fmt.Errorf("%w: file %q size %d but its chunks hold %d bytes", ErrIndexMalformed, e.Path, e.Size, sum)
		}
	}
	return nil
}

// checkRawCID accepts only what content stores: CIDv1, raw codec, SHA2-256.
func checkRawCID(c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("missing CID")
	}
	p := c.Prefix()
	if p.Version != 1 || p.Codec != cid.Raw || p.MhType != mh.SHA2_256 || p.MhLength != 32 {
		return fmt.Errorf("CID %s is not a raw CIDv1 with SHA2-256", c)
	}
	return nil
}
