package content

import (
	"bytes"
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/meshota/meshota/crypto"
)

const testChannel = "meshota/test/stable"

var testSecret = crypto.ChannelSecret{1, 2, 3, 4, 5, 6, 7, 8}

func memStore() blockstore.Blockstore {
	return blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore()))
}

// countingSource wraps a source and records every CID it delivers.
type countingSource struct {
	src BlockSource
	mu  sync.Mutex
	got map[cid.Cid]int
	// calls counts GetBlocks calls.
	calls int
}

func newCounting(src BlockSource) *countingSource {
	return &countingSource{src: src, got: map[cid.Cid]int{}}
}

func (s *countingSource) GetBlocks(ctx context.Context, cids []cid.Cid) <-chan blocks.Block {
	in := s.src.GetBlocks(ctx, cids)
	out := make(chan blocks.Block)
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	go func() {
		defer close(out)
		for b := range in {
			select {
			case out <- b: // counted only once delivered to the caller
				s.mu.Lock()
				s.got[b.Cid()]++
				s.mu.Unlock()
			case <-ctx.Done():
				for range in {
				}
				return
			}
		}
	}()
	return out
}

func (s *countingSource) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.got {
		n += v
	}
	return n
}

// treeSpec describes a test tree: path -> content; directories end in "/";
// symlinks are "-> target".
type node struct {
	path   string
	mode   fs.FileMode
	data   []byte
	dir    bool
	target string
}

func writeTree(t testing.TB, root string, nodes []node) {
	t.Helper()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		p := filepath.Join(root, filepath.FromSlash(n.path))
		var err error
		switch {
		case n.dir:
			err = os.MkdirAll(p, 0o755)
		case n.target != "":
			err = os.Symlink(n.target, p)
		default:
			err = os.WriteFile(p, n.data, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// modes last, deepest first, so read-only directories do not block writes
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		if n.target == "" && n.mode != 0 {
			if err := os.Chmod(filepath.Join(root, filepath.FromSlash(n.path)), n.mode); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// compareTrees checks, independently of VerifyStaged, that got holds the
// same entries as want: types, permission bits, bytes and link targets.
func compareTrees(t testing.TB, want, got string) {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		if rel == "." {
			return nil
		}
		seen[rel] = true
		wi, _ := os.Lstat(p)
		gi, err := os.Lstat(filepath.Join(got, rel))
		if err != nil {
			t.Errorf("%s: missing: %v", rel, err)
			return nil
		}
		if wi.Mode().Type() != gi.Mode().Type() {
			t.Errorf("%s: type %v, want %v", rel, gi.Mode().Type(), wi.Mode().Type())
			return nil
		}
		if wi.Mode().Type() != fs.ModeSymlink && wi.Mode().Perm() != gi.Mode().Perm() {
			t.Errorf("%s: mode %o, want %o", rel, gi.Mode().Perm(), wi.Mode().Perm())
		}
		switch wi.Mode().Type() {
		case fs.ModeSymlink:
			a, _ := os.Readlink(p)
			b, _ := os.Readlink(filepath.Join(got, rel))
			if a != b {
				t.Errorf("%s: link %q, want %q", rel, b, a)
			}
		case 0:
			if !sameFile(t, p, filepath.Join(got, rel)) {
				t.Errorf("%s: content differs", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(got, p)
		if err == nil && rel != "." && !seen[rel] {
			t.Errorf("%s: not in the source tree", rel)
		}
		return nil
	})
}

// sameFile compares two files in 1 MiB pieces.
func sameFile(t testing.TB, a, b string) bool {
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, ea := fa.Read(ba)
		nb, _ := readFull(fb, bb[:na])
		if nb != na || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		if ea != nil {
			n, _ := fb.Read(bb[:1])
			return n == 0
		}
	}
}

func readFull(f *os.File, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := f.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// publishAndAssemble publishes src, opens the index on a fresh device store
// fed from the publisher store, assembles into a staging directory and
// returns it with the release and the device side objects.
type device struct {
	store   blockstore.Blockstore
	source  *countingSource
	staging string
	index   *Index
}

// publishNodes writes nodes as a tree under a fresh dir (dir/src) and
// publishes it into a fresh memory store.
func publishNodes(t testing.TB, ctx context.Context, nodes []node) (dir, src string, pub blockstore.Blockstore, rel *Release) {
	t.Helper()
	dir = t.TempDir()
	src = filepath.Join(dir, "src")
	writeTree(t, src, nodes)
	pub = memStore()
	return dir, src, pub, publishTree(t, ctx, pub, src, nil)
}

func publishTree(t testing.TB, ctx context.Context, pub blockstore.Blockstore, src string, prev *Index) *Release {
	t.Helper()
	rel, err := Publish(ctx, pub, PublishOptions{Channel: testChannel, Secret: &testSecret, Source: src, Previous: prev})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return rel
}

func assembleRelease(t testing.TB, ctx context.Context, pub blockstore.Blockstore, dev blockstore.Blockstore, rel *Release, staging string) *device {
	t.Helper()
	return assembleReleaseOpt(t, ctx, pub, dev, rel, staging, AssembleOptions{})
}

func assembleReleaseOpt(t testing.TB, ctx context.Context, pub blockstore.Blockstore, dev blockstore.Blockstore, rel *Release, staging string, opt AssembleOptions) *device {
	t.Helper()
	d := &device{store: dev, source: newCounting(StoreSource{pub}), staging: staging}
	x, err := OpenIndex(ctx, dev, d.source, rel.IndexRoot, &rel.Key, testChannel)
	if err != nil {
		t.Fatalf("OpenIndex: %v", err)
	}
	d.index = x
	if _, err := Assemble(ctx, dev, d.source, x, staging, opt); err != nil {
		t.Fatalf("Assemble: %v", err)
	}
	if err := VerifyStaged(ctx, x, staging); err != nil {
		t.Fatalf("VerifyStaged: %v", err)
	}
	return d
}
