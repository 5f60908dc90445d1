package content

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/protocol/codec"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.json")

// golden pins every format content writes: chunk boundaries and block CIDs
// of a fixed input under a fixed secret (chunker + convergent encryption +
// CID), the CBOR of index pages and roots, the index AAD, and the CBOR and
// CIDs of a block list.
type golden struct {
	Chunks        []string `json:"chunks"` // "length plaintext-hash block-CID"
	IndexPage     string   `json:"index_page"`
	IndexRoot     string   `json:"index_root"`
	IndexAAD      string   `json:"index_aad"`
	BlockListRoot string   `json:"block_list_root"`
	BlockListPage string   `json:"block_list_page"`
	BlockListCID  string   `json:"block_list_cid"`
}

func computeGolden(t *testing.T) golden {
	var g golden
	data := randBytes(rand.New(rand.NewPCG(2026, 11)), 3<<20)
	sp := newSplitter(bytes.NewReader(data))
	for {
		c, err := sp.NextBytes()
		if err != nil {
			break
		}
		ch, b := sealChunk(&testSecret, testChannel, c)
		g.Chunks = append(g.Chunks, fmt.Sprintf("%d %x %s", ch.Len, ch.Hash, b.Cid()))
	}
	x := sampleIndex()
	p, err := codec.Marshal(&indexPage{Entries: x.Entries, Chunks: x.Chunks})
	if err != nil {
		t.Fatal(err)
	}
	g.IndexPage = hex.EncodeToString(p)
	r, err := codec.Marshal(&indexRoot{Version: IndexVersion, Entries: 4, Chunks: 1, Pages: []pageRef{{CID: RawCID(p), Entries: 4, Chunks: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	g.IndexRoot = hex.EncodeToString(r)
	g.IndexAAD = hex.EncodeToString(indexAAD(testChannel, 3))
	root, pages, err := buildBlockList([]cid.Cid{RawCID([]byte("b")), RawCID([]byte("a")), RawCID([]byte("c")), RawCID([]byte("a"))})
	if err != nil {
		t.Fatal(err)
	}
	g.BlockListRoot = hex.EncodeToString(root.RawData())
	g.BlockListPage = hex.EncodeToString(pages[0].RawData())
	g.BlockListCID = root.Cid().String()
	return g
}

func TestGolden(t *testing.T) {
	path := filepath.Join("testdata", "golden.json")
	got := computeGolden(t)
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
	}
	var want golden
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(got.Chunks) != len(want.Chunks) {
		t.Errorf("%d chunks, golden has %d: the chunker or its sizes changed", len(got.Chunks), len(want.Chunks))
	}
	for i := range min(len(got.Chunks), len(want.Chunks)) {
		if got.Chunks[i] != want.Chunks[i] {
			t.Errorf("chunk %d = %s, golden %s", i, got.Chunks[i], want.Chunks[i])
		}
	}
	for _, f := range []struct{ name, got, want string }{
		{"index page", got.IndexPage, want.IndexPage},
		{"index root", got.IndexRoot, want.IndexRoot},
		{"index AAD", got.IndexAAD, want.IndexAAD},
		{"block list root", got.BlockListRoot, want.BlockListRoot},
		{"block list page", got.BlockListPage, want.BlockListPage},
		{"block list CID", got.BlockListCID, want.BlockListCID},
	} {
		if f.got != f.want {
			t.Errorf("%s changed:\n got %s\nwant %s", f.name, f.got, f.want)
		}
	}
	// The golden encodings decode back (the decoders accept what is pinned).
	page, _ := hex.DecodeString(want.IndexPage)
	var p indexPage
	if err := codec.Unmarshal(page, &p, indexLimits); err != nil {
		t.Errorf("golden index page does not decode: %v", err)
	}
	lp, _ := hex.DecodeString(want.BlockListPage)
	if _, err := decodeBlockListPage(lp); err != nil {
		t.Errorf("golden block list page does not decode: %v", err)
	}
}
