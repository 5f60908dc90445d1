package bundle

import (
	"context"
	"errors"
	"fmt"
	"io"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/protocol"
	"github.com/meshota/meshota/protocol/codec"
)

// Document is the bundle's root block.
type Document struct {
	Manifest    []byte   `cbor:"1,keyasint"`           // signed manifest envelope
	Roots       [][]byte `cbor:"2,keyasint,omitempty"` // signed trust roots, oldest first
	Enrollments [][]byte `cbor:"3,keyasint,omitempty"` // signed enrollment records
}

// MaxDocument bounds the bundle document (enrollments of a large fleet).
const MaxDocument = 64 << 20

var (
	// ErrNoBundle means the CAR does not start with a bundle document.
	ErrNoBundle = errors.New("bundle: not a meshota release bundle")
	// ErrIncomplete means a block the manifest references is missing.
	ErrIncomplete = errors.New("bundle: incomplete release")
)

// Getter reads blocks (a blockstore).
type Getter interface {
	Get(ctx context.Context, c cid.Cid) (blocks.Block, error)
}

// References lists every block the manifest m references, read from g:
// the block list (root, pages and every block it names) and the keyring
// (root and shards). It fails with ErrIncomplete naming the first missing
// block, so it doubles as a completeness check.
func References(ctx context.Context, g Getter, m *protocol.Manifest, l protocol.Limits) ([]cid.Cid, error) {
	bl, err := content.ReadBlockList(ctx, g, m.Blocks)
	if err != nil {
		return nil, fmt.Errorf("%w: block list: %v", ErrIncomplete, err)
	}
	out := append([]cid.Cid{m.Blocks}, bl.Pages...)
	out = append(out, bl.All()...)
	kr, err := KeyringBlocks(ctx, g, m, l)
	if err != nil {
		return nil, err
	}
	for _, c := range kr {
		if _, err := g.Get(ctx, c); err != nil {
			return nil, fmt.Errorf("%w: keyring block %s: %v", ErrIncomplete, c, err)
		}
	}
	return append(out, kr...), nil
}

// KeyringBlocks lists the keyring blocks (root, then every shard) of m,
// reading the root from g. They are not in the release's block list, so
// holders pin them separately.
func KeyringBlocks(ctx context.Context, g Getter, m *protocol.Manifest, l protocol.Limits) ([]cid.Cid, error) {
	kb, err := g.Get(ctx, m.Keyring.Root)
	if err != nil {
		return nil, fmt.Errorf("%w: keyring root %s: %v", ErrIncomplete, m.Keyring.Root, err)
	}
	if err := content.VerifyBlock(m.Keyring.Root, kb.RawData()); err != nil {
		return nil, err
	}
	kr, err := protocol.ParseKeyringRoot(kb.RawData(), m, l)
	if err != nil {
		return nil, err
	}
	out := []cid.Cid{m.Keyring.Root}
	for i := range kr.NumShards() {
		out = append(out, kr.ShardCID(uint32(i)))
	}
	return out, nil
}

// Write streams a bundle for doc to w: the document, then every block
// referenced by its manifest, read from g.
func Write(ctx context.Context, w io.Writer, g Getter, doc *Document, l protocol.Limits) error {
	m, err := protocol.DecodeManifest(doc.Manifest, l)
	if err != nil {
		return err
	}
	refs, err := References(ctx, g, m, l)
	if err != nil {
		return err
	}
	docBytes, err := codec.Marshal(doc)
	if err != nil {
		return err
	}
	docCID := content.RawCID(docBytes)
	cw, err := storage.NewWritable(w, []cid.Cid{docCID}, car.WriteAsCarV1(true), car.AllowDuplicatePuts(false))
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if err := cw.Put(ctx, docCID.KeyString(), docBytes); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	seen := map[cid.Cid]bool{docCID: true}
	for _, c := range refs {
		if seen[c] {
			continue
		}
		seen[c] = true
		b, err := g.Get(ctx, c)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrIncomplete, c, err)
		}
		if err := cw.Put(ctx, c.KeyString(), b.RawData()); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
	}
	return cw.Finalize()
}

// Putter stores blocks (a blockstore).
type Putter interface {
	Put(ctx context.Context, b blocks.Block) error
}

// ReadStats says what Read stored.
type ReadStats struct {
	Blocks int
	Bytes  uint64
}

// Read takes a bundle from r: every block is verified against its CID and
// stored with p; the bundle document is returned. At most maxBytes of block
// data are accepted. Completeness is the caller's check (References), once
// the manifest has been validated.
func Read(ctx context.Context, r io.Reader, p Putter, maxBytes uint64) (*Document, ReadStats, error) {
	var st ReadStats
	br, err := car.NewBlockReader(r)
	if err != nil {
		return nil, st, fmt.Errorf("%w: %v", ErrNoBundle, err)
	}
	if len(br.Roots) != 1 {
		return nil, st, fmt.Errorf("%w: %d roots, want 1", ErrNoBundle, len(br.Roots))
	}
	root := br.Roots[0]
	var doc *Document
	for {
		b, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, st, fmt.Errorf("bundle: read block %d: %w", st.Blocks+1, err)
		}
		if err := content.VerifyBlock(b.Cid(), b.RawData()); err != nil {
			return nil, st, fmt.Errorf("bundle: %w", err)
		}
		if b.Cid().Equals(root) {
			if len(b.RawData()) > MaxDocument {
				return nil, st, fmt.Errorf("%w: document of %d bytes", ErrNoBundle, len(b.RawData()))
			}
			var d Document
			if err := codec.Unmarshal(b.RawData(), &d, codec.Limits{MaxBytes: MaxDocument, MaxElements: 1 << 20}); err != nil {
				return nil, st, fmt.Errorf("%w: %v", ErrNoBundle, err)
			}
			doc = &d
			continue
		}
		st.Blocks++
		st.Bytes += uint64(len(b.RawData()))
		if st.Bytes > maxBytes {
			return nil, st, fmt.Errorf("bundle: more than %d bytes of blocks; refused", maxBytes)
		}
		if err := p.Put(ctx, b); err != nil {
			return nil, st, fmt.Errorf("bundle: store: %w", err)
		}
	}
	if doc == nil {
		return nil, st, fmt.Errorf("%w: root block missing", ErrNoBundle)
	}
	return doc, st, nil
}
