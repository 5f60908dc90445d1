package content

import (
	"context"
	"encoding/binary"

	"fmt"
	"math"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/protocol/codec"
)

// IndexVersion is the format version written in every index root.
const IndexVersion = 1

// Index paging: entries and chunks are packed in order into pages of at most
// indexPageBudget estimated bytes; the root lists the pages. One level only,
// so a fetcher learns every page CID from the root in one round trip.
const (
	indexPageBudget   = 512 << 10
	indexPageMaxBytes = 1 << 20 // encoded page limit, before sealing
	indexPageMaxElems = 1 << 16
	indexRootMaxBytes = MaxBlockSize - crypto.SealedOverhead
	indexRootMaxPages = 1 << 15
	rootPageNumber    = math.MaxUint64
)

// indexLimits bound decoding of one index page.
var indexLimits = codec.Limits{MaxBytes: indexPageMaxBytes, MaxElements: indexPageMaxElems}

var rootLimits = codec.Limits{MaxBytes: indexRootMaxBytes, MaxElements: indexRootMaxPages}

type indexRoot struct {
	Version uint64    `cbor:"1,keyasint"`
	Entries uint64    `cbor:"2,keyasint"`
	Chunks  uint64    `cbor:"3,keyasint"`
	Pages   []pageRef `cbor:"4,keyasint"`
}

type pageRef struct {
	CID     cid.Cid `cbor:"1,keyasint"`
	Entries uint64  `cbor:"2,keyasint"`
	Chunks  uint64  `cbor:"3,keyasint"`
}

type indexPage struct {
	Entries []Entry `cbor:"1,keyasint,omitempty"`
	Chunks  []Chunk `cbor:"2,keyasint,omitempty"`
}

// indexAAD binds a sealed index page to its channel and position.
func indexAAD(channel string, page uint64) []byte {
	aad := make([]byte, 0, 32+len(channel))
	aad = append(aad, "meshota/v1 index page\x00"...)
	aad = append(aad, channel...)
	aad = append(aad, 0)
	return binary.BigEndian.AppendUint64(aad, page)
}

// sealIndex encodes x into sealed page blocks and a sealed root block under
// key. It returns the root block and the page blocks, in page order.
func sealIndex(x *Index, key *crypto.SymmetricKey) (root blocks.Block, pages []blocks.Block, err error) {
	var r indexRoot
	r.Version = IndexVersion
	r.Entries, r.Chunks = uint64(len(x.Entries)), uint64(len(x.Chunks))
	ei, ci := 0, 0
	for ei < len(x.Entries) || ci < len(x.Chunks) {
		var p indexPage
		budget := indexPageBudget
		e0, c0 := ei, ci
		for ei < len(x.Entries) && budget > 0 && ei-e0 < indexPageMaxElems/2 {
			budget -= 48 + len(x.Entries[ei].Path) + len(x.Entries[ei].Target)
			ei++
		}
		for ci < len(x.Chunks) && budget > 0 && ci-c0 < indexPageMaxElems/2 {
			budget -= 128
			ci++
		}
		p.Entries, p.Chunks = x.Entries[e0:ei], x.Chunks[c0:ci]
		b, err := sealDoc(&p, key, x.Channel, uint64(len(pages)), indexPageMaxBytes)
		if err != nil {
			return nil, nil, err
		}
		pages = append(pages, b)
		r.Pages = append(r.Pages, pageRef{CID: b.Cid(), Entries: uint64(ei - e0), Chunks: uint64(ci - c0)})
	}
	if len(r.Pages) > indexRootMaxPages {
		return nil, nil, fmt.Errorf("%w: index needs %d pages, more than %d; split the release", ErrIndexMalformed, len(r.Pages), indexRootMaxPages)
	}
	root, err = sealDoc(&r, key, x.Channel, rootPageNumber, indexRootMaxBytes)
	return root, pages, err
}

func sealDoc(v any, key *crypto.SymmetricKey, channel string, page uint64, limit int) (blocks.Block, error) {
	plain, err := codec.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode index page %d: %w", page, err)
	}
	if len(plain) > limit {
		return nil, fmt.Errorf("%w: index page %d encodes to %d bytes, limit %d", ErrIndexMalformed, page, len(plain), limit)
	}
	return newRawBlock(crypto.Seal(key, indexAAD(channel, page), plain)), nil
}

// decodeIndexRoot decrypts and decodes a sealed index root block and checks
// that its page references are consistent.
func decodeIndexRoot(sealed []byte, key *crypto.SymmetricKey, channel string) (*indexRoot, error) {
	plain, err := crypto.Open(key, indexAAD(channel, rootPageNumber), sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: root: %w; check the release key and channel", ErrIndexKey, err)
	}
	var r indexRoot
	if err := codec.Unmarshal(plain, &r, rootLimits); err != nil {
		return nil, fmt.Errorf("%w: root: %w", ErrIndexMalformed, err)
	}
	if r.Version != IndexVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads %d; upgrade meshota", ErrIndexMalformed, r.Version, IndexVersion)
	}
	var ne, nc uint64
	for i, p := range r.Pages {
		if err := checkRawCID(p.CID); err != nil {
			return nil, fmt.Errorf("%w: page %d: %w", ErrIndexMalformed, i, err)
		}
		if p.Entries > indexPageMaxElems || p.Chunks > indexPageMaxElems {
			return nil, fmt.Errorf("%w: page %d claims too many records", ErrIndexMalformed, i)
		}
		ne += p.Entries
		nc += p.Chunks
	}
	if ne != r.Entries || nc != r.Chunks {
		return nil, fmt.Errorf("%w: root counts (%d entries, %d chunks) disagree with pages (%d, %d)", ErrIndexMalformed, r.Entries, r.Chunks, ne, nc)
	}
	return &r, nil
}

func decodeIndexPage(sealed []byte, key *crypto.SymmetricKey, channel string, n uint64, ref pageRef) (*indexPage, error) {
	plain, err := crypto.Open(key, indexAAD(channel, n), sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: page %d: %w", ErrIndexKey, n, err)
	}
	var p indexPage
	if err := codec.Unmarshal(plain, &p, indexLimits); err != nil {
		return nil, fmt.Errorf("%w: page %d: %w", ErrIndexMalformed, n, err)
	}
	if uint64(len(p.Entries)) != ref.Entries || uint64(len(p.Chunks)) != ref.Chunks {
		return nil, fmt.Errorf("%w: page %d holds %d entries and %d chunks, root says %d and %d", ErrIndexMalformed, n, len(p.Entries), len(p.Chunks), ref.Entries, ref.Chunks)
	}
	return &p, nil
}

// decodeIndex decodes an index from its sealed root and a loader of page
// blocks (each verified against its CID), then validates it. It keeps the
// entries and streams the chunk list: the result reads its chunks from the
// pages through load when needed, holding one page at a time.
func decodeIndex(ctx context.Context, rootData []byte, key *crypto.SymmetricKey, channel string, load func(context.Context, cid.Cid) ([]byte, error)) (*Index, error) {
	r, err := decodeIndexRoot(rootData, key, channel)
	if err != nil {
		return nil, err
	}
	p := &indexPages{key: *key, refs: r.Pages, first: make([]uint64, len(r.Pages)), total: r.Chunks, load: load}
	x := &Index{Channel: channel, pages: p}
	// Pre-size only within what the page limits allow, not what a root claims.
	x.Entries = make([]Entry, 0, min(r.Entries, 1<<16))
	var n uint64
	for i, ref := range r.Pages {
		p.first[i] = n
		n += ref.Chunks
		if ref.Entries == 0 {
			continue // a page of chunks only: read when its chunks are
		}
		data, err := load(ctx, ref.CID)
		if err != nil {
			return nil, fmt.Errorf("index page %d: %w", i, err)
		}
		page, err := decodeIndexPage(data, key, channel, uint64(i), ref)
		if err != nil {
			return nil, err
		}
		x.Entries = append(x.Entries, page.Entries...)
	}
	if err := x.validate(ctx); err != nil {
		return nil, err
	}
	return x, nil
}

// indexBlockCIDs returns the CIDs of the root and page blocks of a sealed
// index, which a block list must include.
func indexBlockCIDs(root blocks.Block, pages []blocks.Block) []cid.Cid {
	out := []cid.Cid{root.Cid()}
	for _, p := range pages {
		out = append(out, p.Cid())
	}
	return out
}
