package content

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/protocol/codec"
)

// BlockListVersion is the format version of the cleartext block list.
const BlockListVersion = 1

const (
	blockListPageCIDs = 16384 // ~600 KiB per page
	blockListMaxPages = 16384
)

var (
	blockListRootLimits = codec.Limits{MaxBytes: MaxBlockSize, MaxElements: blockListMaxPages}
	blockListPageLimits = codec.Limits{MaxBytes: MaxBlockSize, MaxElements: blockListPageCIDs}
)

type blockListRoot struct {
	Version uint64    `cbor:"1,keyasint"`
	Count   uint64    `cbor:"2,keyasint"`
	Pages   []cid.Cid `cbor:"3,keyasint"`
}

type blockListPage struct {
	CIDs []cid.Cid `cbor:"1,keyasint"`
}

// BlockList is the cleartext list of a release's blocks: every chunk block
// and every index block, sorted by CID bytes and without duplicates (so it
// reveals nothing of file order), plus the CIDs of the list's own blocks.
// Holders without keys use it to pin, garbage-collect, prefetch and check
// that an import is complete.
type BlockList struct {
	Root   cid.Cid   // what a manifest points to
	Pages  []cid.Cid // the list's own page blocks
	Blocks []cid.Cid // the release's content blocks, sorted
}

// All returns every block the release needs a holder to keep: the content
// blocks and the list's own root and pages.
func (l *BlockList) All() []cid.Cid {
	out := make([]cid.Cid, 0, len(l.Blocks)+len(l.Pages)+1)
	out = append(out, l.Blocks...)
	out = append(out, l.Pages...)
	return append(out, l.Root)
}

// sortCIDs sorts and deduplicates cids in place by their binary form.
func sortCIDs(cids []cid.Cid) []cid.Cid {
	slices.SortFunc(cids, func(a, b cid.Cid) int { return bytes.Compare(a.Bytes(), b.Bytes()) })
	return slices.CompactFunc(cids, func(a, b cid.Cid) bool { return a.Equals(b) })
}

// buildBlockList pages the sorted, deduplicated cids into blocks and returns
// the root block and the page blocks.
func buildBlockList(cids []cid.Cid) (blocks.Block, []blocks.Block, error) {
	cids = sortCIDs(cids)
	r := blockListRoot{Version: BlockListVersion, Count: uint64(len(cids))}
	var pages []blocks.Block
	for len(cids) > 0 {
		n := min(len(cids), blockListPageCIDs)
		data, err := codec.Marshal(&blockListPage{CIDs: cids[:n]})
		if err != nil {
			return nil, nil, fmt.Errorf("encode block list page: %w", err)
		}
		b := newRawBlock(data)
		pages = append(pages, b)
		r.Pages = append(r.Pages, b.Cid())
		cids = cids[n:]
	}
	if len(r.Pages) > blockListMaxPages {
		return nil, nil, fmt.Errorf("%w: %d pages exceed %d; split the release", ErrBlockListMalformed, len(r.Pages), blockListMaxPages)
	}
	data, err := codec.Marshal(&r)
	if err != nil {
		return nil, nil, fmt.Errorf("encode block list root: %w", err)
	}
	return newRawBlock(data), pages, nil
}

// Getter is the read side of a block store: the part of boxo's
// blockstore.Blockstore that ReadBlockList needs.
type Getter interface {
	Get(ctx context.Context, c cid.Cid) (blocks.Block, error)
}

// ReadBlockList reads and checks the cleartext block list rooted at root
// from g, without any key. Every block read is verified against its CID.
func ReadBlockList(ctx context.Context, g Getter, root cid.Cid) (*BlockList, error) {
	get := func(c cid.Cid) ([]byte, error) {
		b, err := g.Get(ctx, c)
		if err != nil {
			return nil, &BlockError{CID: c, Err: fmt.Errorf("%w: %w", ErrBlockMissing, err)}
		}
		if err := VerifyBlock(c, b.RawData()); err != nil {
			return nil, err
		}
		return b.RawData(), nil
	}
	data, err := get(root)
	if err != nil {
		return nil, fmt.Errorf("block list root: %w", err)
	}
	r, err := decodeBlockListRoot(data)
	if err != nil {
		return nil, err
	}
	l := &BlockList{Root: root, Pages: r.Pages, Blocks: make([]cid.Cid, 0, min(r.Count, blockListPageCIDs))}
	for i, pc := range r.Pages {
		data, err := get(pc)
		if err != nil {
			return nil, fmt.Errorf("block list page %d: %w", i, err)
		}
		p, err := decodeBlockListPage(data)
		if err != nil {
			return nil, fmt.Errorf("block list page %d: %w", i, err)
		}
		if len(l.Blocks) > 0 && len(p.CIDs) > 0 && bytes.Compare(l.Blocks[len(l.Blocks)-1].Bytes(), p.CIDs[0].Bytes()) >= 0 {
			return nil, fmt.Errorf("%w: page %d does not continue the sorted order", ErrBlockListMalformed, i)
		}
		l.Blocks = append(l.Blocks, p.CIDs...)
	}
	if uint64(len(l.Blocks)) != r.Count {
		return nil, fmt.Errorf("%w: root counts %d blocks, pages hold %d", ErrBlockListMalformed, r.Count, len(l.Blocks))
	}
	return l, nil
}

func decodeBlockListRoot(data []byte) (*blockListRoot, error) {
	var r blockListRoot
	if err := codec.Unmarshal(data, &r, blockListRootLimits); err != nil {
		return nil, fmt.Errorf("%w: root: %w", ErrBlockListMalformed, err)
	}
	if r.Version != BlockListVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads %d; upgrade meshota", ErrBlockListMalformed, r.Version, BlockListVersion)
	}
	if r.Count > uint64(len(r.Pages))*blockListPageCIDs {
		return nil, fmt.Errorf("%w: %d blocks cannot fit %d pages", ErrBlockListMalformed, r.Count, len(r.Pages))
	}
	for i, c := range r.Pages {
		if err := checkRawCID(c); err != nil {
			return nil, fmt.Errorf("%w: page %d: %w", ErrBlockListMalformed, i, err)
		}
	}
	return &r, nil
}

func decodeBlockListPage(data []byte) (*blockListPage, error) {
	var p blockListPage
	if err := codec.Unmarshal(data, &p, blockListPageLimits); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBlockListMalformed, err)
	}
	if len(p.CIDs) == 0 {
		return nil, fmt.Errorf("%w: empty page", ErrBlockListMalformed)
	}
	for i, c := range p.CIDs {
		if err := checkRawCID(c); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", ErrBlockListMalformed, i, err)
		}
		if i > 0 && bytes.Compare(p.CIDs[i-1].Bytes(), c.Bytes()) >= 0 {
			return nil, fmt.Errorf("%w: entries %d and %d are not in strictly increasing order", ErrBlockListMalformed, i-1, i)
		}
	}
	return &p, nil
}
