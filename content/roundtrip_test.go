package content

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/crypto"
)

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	many := []node{{path: "many", dir: true}}
	for i := range 300 {
		many = append(many, node{path: "many/f" + strconv.Itoa(i), data: randBytes(r, r.IntN(3000))})
	}
	tests := []struct {
		name       string
		nodes      []node
		wantChunks int // -1: don't care
	}{
		{"empty release", nil, 0},
		{"empty file", []node{{path: "empty"}}, 0},
		{"one chunk", []node{{path: "one", data: randBytes(r, MinChunkSize-1)}}, 1},
		{"one max chunk", []node{{path: "one", data: randBytes(r, MinChunkSize)}}, 1},
		{"many small files", many, -1},
		{"tree with modes and links", []node{
			{path: "bin", dir: true, mode: 0o755},
			{path: "bin/tool", data: randBytes(r, 3*MaxChunkSize+17), mode: 0o755},
			{path: "etc", dir: true, mode: 0o555},
			{path: "etc/conf", data: []byte("k=v\n"), mode: 0o444},
			{path: "etc/empty", mode: 0o600},
			{path: "lib", dir: true, mode: 0o700},
			{path: "lib/a.so", data: randBytes(r, 700_000), mode: 0o640},
			{path: "lib/link", target: "a.so"},
			{path: "lib/up", target: "../etc/conf"},
			{path: "top", target: "bin"},
			{path: "zdup", data: nil},
		}, -1},
	}
	for _, tc := range tests {
		for _, m := range assembleModes {
			t.Run(tc.name+"/"+m.name, func(t *testing.T) {
				testRoundTrip(t, tc.nodes, tc.wantChunks, m.opt)
			})
		}
	}
}

// assembleModes are the two ways a device assembles: blocks kept in its
// store, or plaintext only.
var assembleModes = []struct {
	name string
	opt  AssembleOptions
}{
	{"blocks", AssembleOptions{}},
	{"plaintext", AssembleOptions{PlaintextOnly: true}},
}

func testRoundTrip(t *testing.T, nodes []node, wantChunks int, opt AssembleOptions) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeTree(t, src, nodes)
	pub := memStore()
	rel := publishTree(t, ctx, pub, src, nil)
	if wantChunks >= 0 && len(rel.Index.Chunks) != wantChunks {
		t.Errorf("chunks = %d, want %d", len(rel.Index.Chunks), wantChunks)
	}
	d := assembleReleaseOpt(t, ctx, pub, memStore(), rel, filepath.Join(dir, "staging"), opt)
	compareTrees(t, src, d.staging)
	if len(d.index.Entries) != len(nodes) {
		t.Errorf("index has %d entries, tree %d", len(d.index.Entries), len(nodes))
	}
	// The device fetched each block exactly once, and exactly the
	// blocks of the cleartext block list.
	l, err := ReadBlockList(ctx, pub, rel.BlockListRoot)
	if err != nil {
		t.Fatal(err)
	}
	for c, n := range d.source.got {
		if n != 1 {
			t.Errorf("block %s fetched %d times", c, n)
		}
	}
	if len(d.source.got) != len(l.Blocks) {
		t.Errorf("fetched %d distinct blocks, block list has %d", len(d.source.got), len(l.Blocks))
	}
	for _, c := range l.Blocks {
		if d.source.got[c] != 1 {
			t.Errorf("block list names %s, which assembly did not fetch", c)
		}
	}
	// A second assembly with everything local fetches nothing:
	// from the store into new staging, or with plaintext only
	// into the same staging.
	again := filepath.Join(dir, "again")
	if opt.PlaintextOnly {
		again = d.staging
		for _, c := range rel.Index.Chunks {
			if has, _ := d.store.Has(ctx, c.CID); has {
				t.Fatalf("chunk block %s stored with PlaintextOnly", c.CID)
			}
		}
	}
	src2 := newCounting(StoreSource{pub})
	if _, err := Assemble(ctx, d.store, src2, d.index, again, opt); err != nil {
		t.Fatal(err)
	}
	if src2.total() != 0 {
		t.Errorf("re-assembly fetched %d blocks, want 0", src2.total())
	}
}

func TestPublishSingleFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := randBytes(rand.New(rand.NewPCG(3, 4)), 1_500_000)
	src := filepath.Join(dir, "firmware.bin")
	if err := os.WriteFile(src, data, 0o640); err != nil {
		t.Fatal(err)
	}
	pub := memStore()
	rel := publishTree(t, ctx, pub, src, nil)
	if len(rel.Index.Entries) != 1 || rel.Index.Entries[0].Path != "firmware.bin" || rel.Size != uint64(len(data)) {
		t.Fatalf("index = %+v", rel.Index.Entries)
	}
	d := assembleRelease(t, ctx, pub, memStore(), rel, filepath.Join(dir, "staging"))
	if !sameFile(t, src, filepath.Join(d.staging, "firmware.bin")) {
		t.Error("content differs")
	}
}

func TestPublishRefuses(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		nodes []node
		fifo  string
	}{
		{"absolute symlink", []node{{path: "l", target: "/etc/passwd"}}, ""},
		{"symlink escaping", []node{{path: "d", dir: true}, {path: "d/l", target: "../../x"}}, ""},
		{"symlink with dotdot inside", []node{{path: "d", dir: true}, {path: "l", target: "d/../.."}}, ""},
		{"named pipe", nil, "pipe"},
		{"backslash name", []node{{path: `a\b`, data: []byte("x")}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "src")
			writeTree(t, src, tc.nodes)
			if tc.fifo != "" {
				if err := mkfifo(filepath.Join(src, tc.fifo)); err != nil {
					t.Skip(err)
				}
			}
			pub := memStore()
			_, err := Publish(ctx, pub, PublishOptions{Channel: testChannel, Secret: &testSecret, Source: src})
			if !errorsIsAny(err, ErrUnsupportedFile, ErrUnsafePath) {
				t.Fatalf("Publish error = %v, want ErrUnsupportedFile or ErrUnsafePath", err)
			}
		})
	}
}

func TestPublishReportsProgress(t *testing.T) {
	dir := t.TempDir()
	data := randBytes(rand.New(rand.NewPCG(5, 6)), 2_000_000)
	if err := os.WriteFile(filepath.Join(dir, "a"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b"), data[:300_000], 0o644); err != nil {
		t.Fatal(err)
	}
	var calls []uint64
	secret := crypto.ChannelSecret{1}
	_, err := Publish(context.Background(), memStore(), PublishOptions{Channel: "stable", Secret: &secret, Source: dir,
		Progress: func(n uint64) { calls = append(calls, n) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) < 3 || calls[len(calls)-1] != 2_300_000 {
		t.Fatalf("progress calls %v: want several, ending at the total", calls)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i] <= calls[i-1] {
			t.Fatalf("progress went backwards: %v", calls)
		}
	}
}

// listSource serves exactly the blocks it holds, whatever is asked.
type listSource []blocks.Block

func (l listSource) GetBlocks(ctx context.Context, _ []cid.Cid) <-chan blocks.Block {
	out := make(chan blocks.Block, len(l))
	for _, b := range l {
		out <- b
	}
	close(out)
	return out
}

func TestFetch(t *testing.T) {
	ctx := context.Background()
	good := newRawBlock([]byte("good block"))
	other := newRawBlock([]byte("other block"))
	forged, _ := blocks.NewBlockWithCid([]byte("forged bytes"), other.Cid())
	bs := memStore()
	if err := Fetch(ctx, bs, listSource{good}, []cid.Cid{good.Cid()}); err != nil {
		t.Fatal(err)
	}
	if has, _ := bs.Has(ctx, good.Cid()); !has {
		t.Fatal("fetched block not stored")
	}
	if err := Fetch(ctx, bs, listSource{forged}, []cid.Cid{other.Cid()}); !errors.Is(err, ErrBlockMismatch) {
		t.Fatalf("forged block: err = %v, want ErrBlockMismatch", err)
	}
	if has, _ := bs.Has(ctx, other.Cid()); has {
		t.Fatal("a block that fails its CID was stored")
	}
	if err := Fetch(ctx, bs, listSource{}, []cid.Cid{other.Cid()}); !errors.Is(err, ErrBlockMissing) {
		t.Fatalf("missing block: err = %v, want ErrBlockMissing", err)
	}
}

// TestStreamedIndex assembles a release whose index spans several pages
// (9 000 chunks of 64 bytes): the opened index holds no chunk list, reads
// its pages from the device store as assembly goes, and fetches a page
// again if the store lost it.
func TestStreamedIndex(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(41, 42))
	pub := memStore()
	const n, size = 9000, 64
	data := randBytes(r, n*size)
	x := &Index{Channel: testChannel, Entries: []Entry{
		{Path: "d", Type: TypeDir, Mode: 0o755},
		{Path: "d/f", Type: TypeFile, Mode: 0o644, Size: n * size, NumChunks: n},
	}}
	for i := range n {
		c, b := sealChunk(&testSecret, testChannel, data[i*size:(i+1)*size])
		x.Chunks = append(x.Chunks, c)
		if err := pub.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	key := crypto.NewSymmetricKey()
	root, pages, err := sealIndex(x, &key)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 3 {
		t.Fatalf("%d index pages; the test wants several", len(pages))
	}
	for _, b := range append(pages, root) {
		if err := pub.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	dev := memStore()
	got, err := OpenIndex(ctx, dev, StoreSource{pub}, root.Cid(), &key, testChannel)
	if err != nil {
		t.Fatal(err)
	}
	if got.Chunks != nil || got.NumChunks() != n || len(got.Entries) != 2 {
		t.Fatalf("opened index: %d chunks held, %d listed, %d entries", len(got.Chunks), got.NumChunks(), len(got.Entries))
	}
	// The device loses a page: assembly fetches it again.
	if err := dev.DeleteBlock(ctx, pages[1].Cid()); err != nil {
		t.Fatal(err)
	}
	staging := filepath.Join(t.TempDir(), "stage")
	if _, err := Assemble(ctx, dev, StoreSource{pub}, got, staging, AssembleOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := VerifyStaged(ctx, got, staging); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(filepath.Join(staging, "d", "f"))
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("staged file differs (%v)", err)
	}
	// When no one has it any more, a lost page is an error naming it.
	for _, s := range []interface {
		DeleteBlock(context.Context, cid.Cid) error
	}{dev, pub} {
		if err := s.DeleteBlock(ctx, pages[2].Cid()); err != nil {
			t.Fatal(err)
		}
	}
	_, err = Assemble(ctx, dev, StoreSource{pub}, got, filepath.Join(t.TempDir(), "stage"), AssembleOptions{})
	if !errors.Is(err, ErrBlockMissing) || !strings.Contains(err.Error(), "index page 2") {
		t.Fatalf("Assemble with a lost page = %v", err)
	}
	// A page that fails while chunks are being fed (after the checks at
	// the start) stops assembly with that error, in order, without hanging.
	if err := pub.Put(ctx, pages[2]); err != nil {
		t.Fatal(err)
	}
	load, loads := got.pages.load, 0
	errPage := errors.New("page gone")
	got.pages.load = func(ctx context.Context, c cid.Cid) ([]byte, error) {
		if c == pages[2].Cid() {
			if loads++; loads == 3 { // validate, indexID, then the feed
				return nil, errPage
			}
		}
		return load(ctx, c)
	}
	_, err = Assemble(ctx, dev, StoreSource{pub}, got, filepath.Join(t.TempDir(), "stage"), AssembleOptions{})
	if !errors.Is(err, errPage) {
		t.Fatalf("Assemble with a page failing mid-way = %v", err)
	}
}

// TestPublishCancelled cancels publishing at several points: it returns
// the cancellation, never a half-built release.
func TestPublishCancelled(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src, []node{{path: "a", data: randBytes(r, 6*MaxChunkSize)}, {path: "b", data: randBytes(r, 3*MaxChunkSize)}})
	for _, after := range []uint64{1, 3 * MaxChunkSize, 7 * MaxChunkSize} {
		ctx, cancel := context.WithCancel(context.Background())
		_, err := Publish(ctx, memStore(), PublishOptions{Channel: testChannel, Secret: &testSecret, Source: src,
			Progress: func(read uint64) {
				if read >= after {
					cancel()
				}
			}})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled after %d bytes: Publish = %v, want context.Canceled", after, err)
		}
	}
}
