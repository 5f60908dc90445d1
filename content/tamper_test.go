package content

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/crypto"
)

// rawBlock is a block whose CID is not checked against its bytes: what a
// hostile source or a corrupted disk can hand over.
type rawBlock struct {
	c    cid.Cid
	data []byte
}

func (b rawBlock) RawData() []byte                  { return b.data }
func (b rawBlock) Cid() cid.Cid                     { return b.c }
func (b rawBlock) String() string                   { return b.c.String() }
func (b rawBlock) Loggable() map[string]interface{} { return nil }

var _ blocks.Block = rawBlock{}

// tamperSource serves blocks from a store but rewrites one of them.
type tamperSource struct {
	src    BlockSource
	target cid.Cid
	edit   func(b blocks.Block) blocks.Block
}

func (s tamperSource) GetBlocks(ctx context.Context, cids []cid.Cid) <-chan blocks.Block {
	in := s.src.GetBlocks(ctx, cids)
	out := make(chan blocks.Block)
	go func() {
		defer close(out)
		for b := range in {
			if b.Cid().Equals(s.target) {
				b = s.edit(b)
			}
			select {
			case out <- b:
			case <-ctx.Done():
				for range in {
				}
				return
			}
		}
	}()
	return out
}

func TestTamper(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 6))
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src, []node{
		{path: "a", data: randBytes(r, 2*MaxChunkSize)},
		{path: "b", data: randBytes(r, 300_000)},
	})
	pub := memStore()
	rel := publishTree(t, ctx, pub, src, nil)
	x := rel.Index
	chunk0, chunk1 := x.Chunks[0].CID, x.Chunks[len(x.Chunks)-1].CID
	other, _ := pub.Get(ctx, chunk1)
	var indexPage cid.Cid
	{
		l, err := ReadBlockList(ctx, pub, rel.BlockListRoot)
		if err != nil {
			t.Fatal(err)
		}
		isChunk := map[cid.Cid]bool{}
		for _, c := range x.Chunks {
			isChunk[c.CID] = true
		}
		for _, c := range l.Blocks {
			if !isChunk[c] && !c.Equals(rel.IndexRoot) {
				indexPage = c
			}
		}
	}
	flip := func(b blocks.Block) blocks.Block {
		d := append([]byte(nil), b.RawData()...)
		d[len(d)/2] ^= 0x10
		return rawBlock{b.Cid(), d}
	}
	swap := func(b blocks.Block) blocks.Block { return rawBlock{b.Cid(), other.RawData()} }
	truncate := func(b blocks.Block) blocks.Block { return rawBlock{b.Cid(), b.RawData()[:len(b.RawData())-1]} }
	substitute := func(b blocks.Block) blocks.Block { return other } // honest CID, not the one asked

	wrongKey := crypto.NewSymmetricKey()
	tests := []tamperCase{
		{"flipped bit in chunk", chunk0, flip, nil, "", ErrBlockMismatch, chunk0},
		{"flipped bit in index root", rel.IndexRoot, flip, nil, "", ErrBlockMismatch, rel.IndexRoot},
		{"flipped bit in index page", indexPage, flip, nil, "", ErrBlockMismatch, indexPage},
		{"chunk swapped for another valid block", chunk0, swap, nil, "", ErrBlockMismatch, chunk0},
		{"truncated chunk", chunk0, truncate, nil, "", ErrBlockMismatch, chunk0},
		{"other block delivered instead", chunk0, substitute, nil, "", ErrBlockMissing, chunk0},
		{"wrong index key", cid.Undef, nil, &wrongKey, "", ErrIndexKey, cid.Undef},
		{"wrong channel", cid.Undef, nil, nil, "meshota/test/other", ErrIndexKey, cid.Undef},
	}
	for _, tc := range tests {
		for _, m := range assembleModes {
			t.Run(tc.name+"/"+m.name, func(t *testing.T) { testTamper(t, rel, pub, tc, m.opt) })
		}
	}
}

// tamperCase is a source or a key that must make assembly fail.
type tamperCase struct {
	name    string
	target  cid.Cid
	edit    func(blocks.Block) blocks.Block
	key     *crypto.SymmetricKey
	channel string
	want    error
	wantCID cid.Cid
}

func testTamper(t *testing.T, rel *Release, pub BlockStore, tc tamperCase, opt AssembleOptions) {
	ctx := context.Background()
	dir := t.TempDir()
	staging := filepath.Join(dir, "stage")
	var source BlockSource = StoreSource{pub}
	if tc.edit != nil {
		source = tamperSource{source, tc.target, tc.edit}
	}
	key, channel := &rel.Key, testChannel
	if tc.key != nil {
		key = tc.key
	}
	if tc.channel != "" {
		channel = tc.channel
	}
	dev := memStore()
	x, err := OpenIndex(ctx, dev, source, rel.IndexRoot, key, channel)
	if err == nil {
		opt.Window = 2
		_, err = Assemble(ctx, dev, source, x, staging, opt)
	}
	if !errors.Is(err, tc.want) {
		t.Fatalf("error = %v, want %v", err, tc.want)
	}
	var be *BlockError
	if tc.wantCID.Defined() && (!errors.As(err, &be) || !be.CID.Equals(tc.wantCID)) {
		t.Errorf("error %v does not name block %s", err, tc.wantCID)
	}
	if tc.target.Defined() {
		if has, _ := dev.Has(ctx, tc.target); has {
			t.Error("tampered block was stored")
		}
	}
	assertOnlyStaging(t, dir)
}

// assertOnlyStaging checks that dir holds nothing but the staging directory
// and its progress file.
func assertOnlyStaging(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "stage" && e.Name() != "stage.progress" {
			t.Errorf("assembly wrote %s outside staging", e.Name())
		}
	}
}

func TestTamperedLocalStore(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 8))
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src, []node{{path: "a", data: randBytes(r, 400_000)}})
	pub := memStore()
	rel := publishTree(t, ctx, pub, src, nil)
	dev := memStore()
	c := rel.Index.Chunks[0].CID
	good, _ := pub.Get(ctx, c)
	bad := append([]byte(nil), good.RawData()...)
	bad[0] ^= 1
	if err := dev.Put(ctx, rawBlock{c, bad}); err != nil {
		t.Fatal(err)
	}
	// The damaged local block is dropped and fetched again from the source.
	src2 := newCounting(StoreSource{pub})
	staging := filepath.Join(t.TempDir(), "stage")
	if _, err := Assemble(ctx, dev, src2, rel.Index, staging, AssembleOptions{}); err != nil {
		t.Fatalf("Assemble with a damaged local block: %v", err)
	}
	if src2.got[c] != 1 {
		t.Errorf("damaged block fetched %d times, want 1", src2.got[c])
	}
	if err := VerifyStaged(ctx, rel.Index, staging); err != nil {
		t.Fatal(err)
	}
	// With a source that serves the same damage, assembly fails with
	// ErrBlockMismatch after a bounded number of attempts.
	dev2 := memStore()
	bad2 := tamperSource{StoreSource{pub}, c, func(b blocks.Block) blocks.Block { return rawBlock{c, bad} }}
	_, err := Assemble(ctx, dev2, bad2, rel.Index, filepath.Join(t.TempDir(), "stage"), AssembleOptions{})
	if !errors.Is(err, ErrBlockMismatch) {
		t.Fatalf("error = %v, want ErrBlockMismatch", err)
	}
}

// TestHostileIndex seals indexes that a key holder could craft and checks
// that OpenIndex and Assemble refuse them before writing anything.
func TestHostileIndex(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(9, 10))
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src, []node{{path: "a", data: randBytes(r, 200_000)}})
	pub := memStore()
	rel := publishTree(t, ctx, pub, src, nil)
	good := rel.Index
	tests := []struct {
		name string
		edit func(x *Index)
		want error
	}{
		{"dotdot path", func(x *Index) { x.Entries[0].Path = "../evil" }, ErrUnsafePath},
		{"dotdot inside path", func(x *Index) {
			x.Entries = append([]Entry{{Path: "d", Type: TypeDir, Mode: 0o755}}, x.Entries...)
			x.Entries[1].Path = "d/../../evil"
		}, ErrUnsafePath},
		{"absolute path", func(x *Index) { x.Entries[0].Path = "/etc/evil" }, ErrUnsafePath},
		{"file under a symlink", func(x *Index) {
			x.Entries = append([]Entry{{Path: "l", Type: TypeSymlink, Mode: 0o777, Target: "."}}, x.Entries...)
			x.Entries[1].Path = "l/a"
		}, ErrIndexMalformed},
		{"escaping symlink", func(x *Index) {
			x.Entries = append(x.Entries, Entry{Path: "l", Type: TypeSymlink, Mode: 0o777, Target: "../x"})
		}, ErrUnsupportedFile},
		{"duplicate path", func(x *Index) { x.Entries = append(x.Entries, Entry{Path: "a", Type: TypeDir}) }, ErrDuplicatePath},
		{"size mismatch", func(x *Index) { x.Entries[0].Size++ }, ErrIndexMalformed},
		{"wrong chunk key", func(x *Index) { x.Chunks[0].Key[0] ^= 1 }, ErrChunkCorrupt},
		{"wrong chunk hash", func(x *Index) { x.Chunks[0].Hash[0] ^= 1 }, ErrChunkCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := &Index{Channel: good.Channel, Entries: append([]Entry(nil), good.Entries...), Chunks: append([]Chunk(nil), good.Chunks...)}
			tc.edit(x)
			key := crypto.NewSymmetricKey()
			root, pages, err := sealIndex(x, &key)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range append(pages, root) {
				pub.Put(ctx, b)
			}
			dir := t.TempDir()
			dev := memStore()
			got, err := OpenIndex(ctx, dev, StoreSource{pub}, root.Cid(), &key, testChannel)
			if err == nil {
				_, err = Assemble(ctx, dev, StoreSource{pub}, got, filepath.Join(dir, "stage"), AssembleOptions{})
			} else if _, aerr := Assemble(ctx, dev, StoreSource{pub}, x, filepath.Join(dir, "stage"), AssembleOptions{}); !errors.Is(aerr, tc.want) {
				t.Errorf("Assemble of the raw index: %v, want %v", aerr, tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
			assertOnlyStaging(t, dir)
			if _, err := os.Lstat(filepath.Join(dir, "evil")); err == nil {
				t.Error("a file escaped staging")
			}
		})
	}
}
