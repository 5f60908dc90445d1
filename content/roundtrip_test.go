package content

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
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
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			writeTree(t, src, tc.nodes)
			pub := memStore()
			rel := publishTree(t, ctx, pub, src, nil)
			if tc.wantChunks >= 0 && len(rel.Index.Chunks) != tc.wantChunks {
				t.Errorf("chunks = %d, want %d", len(rel.Index.Chunks), tc.wantChunks)
			}
			d := assembleRelease(t, ctx, pub, memStore(), rel, filepath.Join(dir, "staging"))
			compareTrees(t, src, d.staging)
			if len(d.index.Entries) != len(tc.nodes) {
				t.Errorf("index has %d entries, tree %d", len(d.index.Entries), len(tc.nodes))
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
			// A second assembly with everything local fetches nothing.
			src2 := newCounting(StoreSource{pub})
			if _, err := Assemble(ctx, d.store, src2, d.index, filepath.Join(dir, "again"), AssembleOptions{}); err != nil {
				t.Fatal(err)
			}
			if src2.total() != 0 {
				t.Errorf("re-assembly fetched %d blocks, want 0", src2.total())
			}
		})
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
