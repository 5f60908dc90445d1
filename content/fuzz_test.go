package content

import (
	"context"
	"errors"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/protocol/codec"
)

var fuzzKey = crypto.SymmetricKey{9, 9, 9}

func sampleIndex() *Index {
	k := crypto.ChunkKey{1}
	h := crypto.HashChunk([]byte("x"))
	return &Index{Channel: testChannel, Entries: []Entry{
		{Path: "d", Type: TypeDir, Mode: 0o755},
		{Path: "d/f", Type: TypeFile, Mode: 0o644, Size: 1, NumChunks: 1},
		{Path: "d/l", Type: TypeSymlink, Mode: 0o777, Target: "f"},
		{Path: "e", Type: TypeFile, Mode: 0o600},
	}, Chunks: []Chunk{{CID: RawCID([]byte("ct")), Hash: h, Len: 1, Key: k}}}
}

// FuzzIndexPage feeds arbitrary plaintext to the page decoder (sealed under
// a known key, so the fuzzer reaches the CBOR decoder and the validation)
// and checks that whatever decodes validates or is refused with the
// package's errors, and never panics.
func FuzzIndexPage(f *testing.F) {
	p, _ := codec.Marshal(&indexPage{Entries: sampleIndex().Entries, Chunks: sampleIndex().Chunks})
	f.Add(p)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, plain []byte) {
		var page indexPage
		if codec.Unmarshal(plain, &page, indexLimits) != nil {
			return
		}
		ref := pageRef{CID: RawCID(plain), Entries: uint64(len(page.Entries)), Chunks: uint64(len(page.Chunks))}
		root := indexRoot{Version: IndexVersion, Entries: ref.Entries, Chunks: ref.Chunks, Pages: []pageRef{ref}}
		rootPlain, err := codec.Marshal(&root)
		if err != nil {
			t.Fatal(err)
		}
		sealedPage := crypto.Seal(&fuzzKey, indexAAD(testChannel, 0), plain)
		sealedRoot := crypto.Seal(&fuzzKey, indexAAD(testChannel, rootPageNumber), rootPlain)
		x, err := decodeIndex(context.Background(), sealedRoot, &fuzzKey, testChannel, func(context.Context, cid.Cid) ([]byte, error) {
			return sealedPage, nil
		})
		if err != nil {
			if !errors.Is(err, ErrIndexMalformed) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		for _, e := range x.Entries {
			if CheckPath(e.Path) != nil {
				t.Fatalf("accepted unsafe path %q", e.Path)
			}
		}
	})
}

// FuzzIndexRoot feeds arbitrary sealed bytes and plaintext to the root decoder.
func FuzzIndexRoot(f *testing.F) {
	r, _ := codec.Marshal(&indexRoot{Version: 1, Entries: 1, Chunks: 2, Pages: []pageRef{{CID: RawCID(nil), Entries: 1, Chunks: 2}}})
	f.Add(r, false)
	f.Add([]byte("garbage"), true)
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		sealed := data
		if !raw {
			sealed = crypto.Seal(&fuzzKey, indexAAD(testChannel, rootPageNumber), data)
		}
		root, err := decodeIndexRoot(sealed, &fuzzKey, testChannel)
		if err != nil {
			if !errors.Is(err, ErrIndexMalformed) && !errors.Is(err, ErrIndexKey) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		var ne uint64
		for _, p := range root.Pages {
			ne += p.Entries
		}
		if ne != root.Entries {
			t.Fatal("accepted a root whose counts disagree")
		}
	})
}

// mapGetter serves blocks from a map, for the block list fuzzer.
type mapGetter map[cid.Cid][]byte

func (m mapGetter) Get(_ context.Context, c cid.Cid) (blocks.Block, error) {
	d, ok := m[c]
	if !ok {
		return nil, errors.New("not found")
	}
	return rawBlock{c, d}, nil
}

// FuzzBlockList feeds arbitrary root and page bytes to ReadBlockList.
func FuzzBlockList(f *testing.F) {
	root, pages, _ := buildBlockList([]cid.Cid{RawCID([]byte("a")), RawCID([]byte("b"))})
	f.Add(root.RawData(), pages[0].RawData())
	f.Add([]byte{0xa0}, []byte{0xa0})
	f.Fuzz(func(t *testing.T, rootData, pageData []byte) {
		// Point the root's first page reference at the fuzzed page bytes.
		var r blockListRoot
		if codec.Unmarshal(rootData, &r, blockListRootLimits) == nil && len(r.Pages) > 0 {
			r.Pages[0] = RawCID(pageData)
			if b, err := codec.Marshal(&r); err == nil {
				rootData = b
			}
		}
		g := mapGetter{RawCID(rootData): rootData, RawCID(pageData): pageData}
		l, err := ReadBlockList(context.Background(), g, RawCID(rootData))
		if err != nil {
			if !errors.Is(err, ErrBlockListMalformed) && !errors.Is(err, ErrBlockMissing) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		for i := 1; i < len(l.Blocks); i++ {
			if string(l.Blocks[i-1].Bytes()) >= string(l.Blocks[i].Bytes()) {
				t.Fatal("accepted an unsorted block list")
			}
		}
	})
}

// FuzzVerifyBlock checks that VerifyBlock accepts exactly the bytes that
// hash to the CID.
func FuzzVerifyBlock(f *testing.F) {
	f.Add([]byte("block"), []byte("block"))
	f.Add([]byte("block"), []byte("blocc"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		err := VerifyBlock(RawCID(a), b)
		same := string(a) == string(b)
		if same != (err == nil) && len(b) <= MaxBlockSize {
			t.Fatalf("VerifyBlock(same=%v) = %v", same, err)
		}
	})
}
