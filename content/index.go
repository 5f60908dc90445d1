package content

import (
	"fmt"
	"path"

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
// It takes about 150 bytes per chunk in memory (6 MiB for 10 GiB).
type Index struct {
	Channel string
	Entries []Entry
	Chunks  []Chunk
}

// Size returns the total plaintext size of the release's files.
func (x *Index) Size() uint64 {
	var n uint64
	for i := range x.Entries {
		n += x.Entries[i].Size
	}
	return n
}

// FileChunks returns the chunks of entry e.
func (x *Index) FileChunks(e *Entry) []Chunk {
	return x.Chunks[e.FirstChunk : e.FirstChunk+e.NumChunks]
}

// Validate checks what every consumer of an index relies on: safe unique
// paths, each parent a directory listed earlier, symlinks inside the tree,
// file chunk ranges that tile the chunk list in order, sizes that add up,
// chunk lengths within MaxChunkSize and raw SHA2-256 CIDv1 block CIDs.
func (x *Index) Validate() error {
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
				if e.FirstChunk != next || e.NumChunks > uint64(len(x.Chunks))-next {
					return fmt.Errorf("%w: file %q chunk range [%d,+%d) does not follow %d within %d chunks", ErrIndexMalformed, e.Path, e.FirstChunk, e.NumChunks, next, len(x.Chunks))
				}
				var sum uint64
				for _, c := range x.Chunks[e.FirstChunk : e.FirstChunk+e.NumChunks] {
					sum += uint64(c.Len)
				}
				if sum != e.Size {
					return fmt.Errorf("%w: file %q size %d but its chunks hold %d bytes", ErrIndexMalformed, e.Path, e.Size, sum)
				}
				next += e.NumChunks
			} else if e.Size != 0 {
				return fmt.Errorf("%w: file %q of %d bytes has no chunks", ErrIndexMalformed, e.Path, e.Size)
			}
		default:
			return fmt.Errorf("%w: entry %q has unknown type %d", ErrIndexMalformed, e.Path, e.Type)
		}
	}
	if next != uint64(len(x.Chunks)) {
		return fmt.Errorf("%w: %d chunks listed but files use %d", ErrIndexMalformed, len(x.Chunks), next)
	}
	for i := range x.Chunks {
		c := &x.Chunks[i]
		if c.Len == 0 || c.Len > MaxChunkSize {
			return fmt.Errorf("%w: chunk %d has length %d (want 1..%d)", ErrIndexMalformed, i, c.Len, MaxChunkSize)
		}
		if err := checkRawCID(c.CID); err != nil {
			return fmt.Errorf("%w: chunk %d: %w", ErrIndexMalformed, i, err)
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
