package content

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
)

// plainDevice publishes nodes and assembles them plaintext-only: the
// publisher's store, the release, and the device's store and staging.
func plainDevice(t *testing.T, nodes []node) (pub blockstore.Blockstore, rel *Release, d *device) {
	t.Helper()
	ctx := context.Background()
	dir, _, pub, rel := publishNodes(t, ctx, nodes)
	d = assembleReleaseOpt(t, ctx, pub, memStore(), rel, filepath.Join(dir, "installed"), AssembleOptions{PlaintextOnly: true})
	return pub, rel, d
}

// chunksOfFile returns the chunks of the file entry name.
func chunksOfFile(t *testing.T, x *Index, name string) []Chunk {
	t.Helper()
	for _, e := range x.Entries {
		if e.Path == name {
			return x.Chunks[e.FirstChunk : e.FirstChunk+e.NumChunks]
		}
	}
	t.Fatalf("no entry %s", name)
	return nil
}

// logBuffer collects a logger's text output.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestChunkMapServesTheRelease(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(31, 32))
	same := randBytes(r, 2*MaxChunkSize)
	pub, rel, d := plainDevice(t, []node{
		{path: "a", data: randBytes(r, 5*MaxChunkSize+99)},
		{path: "d", dir: true},
		{path: "d/copy1", data: same},
		{path: "d/copy2", data: same},
		{path: "d/empty"},
		{path: "d/zeros", data: make([]byte, 3*MaxChunkSize)},
		{path: "d/link", target: "copy1"},
	})
	m, err := NewChunkMap(ctx, d.index, d.staging, nil)
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[cid.Cid]bool{}
	for _, c := range rel.Index.Chunks {
		distinct[c.CID] = true
	}
	if m.Len() != len(distinct) {
		t.Errorf("map holds %d chunks, release has %d distinct", m.Len(), len(distinct))
	}
	for c := range distinct {
		want, err := pub.Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if has, _ := m.Has(ctx, c); !has {
			t.Errorf("Has(%s) = false", c)
		}
		if n, err := m.GetSize(ctx, c); err != nil || n != len(want.RawData()) {
			t.Errorf("GetSize(%s) = %d, %v; want %d", c, n, err, len(want.RawData()))
		}
		got, err := m.Get(ctx, c)
		if err != nil {
			t.Fatalf("Get(%s): %v", c, err)
		}
		if !got.Cid().Equals(c) || !bytes.Equal(got.RawData(), want.RawData()) {
			t.Errorf("Get(%s) is not the publisher's block", c)
		}
	}
	// The index and the block list are not chunks: not served from here.
	l, err := ReadBlockList(ctx, pub, rel.BlockListRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append(l.All(), RawCID([]byte("not in the release"))) {
		if distinct[c] {
			continue
		}
		if has, _ := m.Has(ctx, c); has {
			t.Errorf("Has(%s) = true for a block that is not a chunk", c)
		}
		_, err := m.Get(ctx, c)
		if !errors.Is(err, ErrBlockMissing) || !ipld.IsNotFound(err) {
			t.Errorf("Get(%s) = %v, want ErrBlockMissing and ipld.ErrNotFound", c, err)
		}
		if _, err := m.GetSize(ctx, c); !ipld.IsNotFound(err) {
			t.Errorf("GetSize(%s) = %v, want ipld.ErrNotFound", c, err)
		}
	}
}

// TestChunkMapDropsChangedFiles: a file changed after install is not
// served (dropped and logged); the release's other files still are.
func TestChunkMapDropsChangedFiles(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(33, 34))
	var nodes []node
	for i := range 3 {
		nodes = append(nodes, node{path: "f" + strconv.Itoa(i), data: randBytes(r, 2*MaxChunkSize+r.IntN(MaxChunkSize))})
	}
	tests := []struct {
		name    string
		edit    func(p, other string) error
		dropped bool
	}{
		{"byte flipped", func(p, _ string) error { return flipByte(p, 100) }, true},
		{"truncated", func(p, _ string) error { return os.Truncate(p, 10) }, true},
		{"removed", func(p, _ string) error { return os.Remove(p) }, true},
		{"replaced by a symlink to another file", func(p, other string) error { return relink(p, other) }, true},
		{"rewritten with the same bytes", func(p, _ string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(p, b, 0o644)
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub, rel, d := plainDevice(t, nodes)
			var logs logBuffer
			m, err := NewChunkMap(ctx, d.index, d.staging, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			target := chunksOfFile(t, rel.Index, "f1")
			if err := tc.edit(filepath.Join(d.staging, "f1"), filepath.Join(d.staging, "f0")); err != nil {
				t.Fatal(err)
			}
			// The last chunk: a flip at the start of the file must still
			// drop the whole file once it is seen.
			_, err = m.Get(ctx, target[0].CID)
			if tc.dropped != (err != nil) {
				t.Fatalf("Get of a chunk of the changed file: %v (dropped %v)", err, tc.dropped)
			}
			if tc.dropped {
				if !ipld.IsNotFound(err) || !errors.Is(err, ErrBlockMissing) {
					t.Errorf("Get = %v, want ErrBlockMissing and ipld.ErrNotFound", err)
				}
				if !strings.Contains(logs.String(), "an installed file changed") || !strings.Contains(logs.String(), "f1") {
					t.Errorf("nothing logged: %q", logs.String())
				}
			}
			for _, c := range target {
				if has, _ := m.Has(ctx, c.CID); has == tc.dropped {
					t.Errorf("Has(%s) = %v after the change", c.CID, has)
				}
			}
			for _, name := range []string{"f0", "f2"} {
				for _, c := range chunksOfFile(t, rel.Index, name) {
					b, err := m.Get(ctx, c.CID)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					want, _ := pub.Get(ctx, c.CID)
					if !bytes.Equal(b.RawData(), want.RawData()) {
						t.Errorf("%s: block differs", name)
					}
				}
			}
		})
	}
}

// TestServingBlockstore: chunks from the maps (newest release first, the
// next one when a file changed), everything else from the store under.
func TestServingBlockstore(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(35, 36))
	shared := randBytes(r, 2*MaxChunkSize)
	pub, rel, d := plainDevice(t, []node{{path: "shared", data: shared}, {path: "old", data: randBytes(r, MaxChunkSize)}})
	pub2, rel2, d2 := plainDevice(t, []node{{path: "shared", data: shared}, {path: "new", data: randBytes(r, MaxChunkSize)}})
	m1, err := NewChunkMap(ctx, d.index, d.staging, nil)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := NewChunkMap(ctx, d2.index, d2.staging, nil)
	if err != nil {
		t.Fatal(err)
	}
	var maps ChunkMaps
	maps.Add(m1)
	maps.Add(m2)
	bs := ServingBlockstore(d2.store, &maps)
	check := func(c cid.Cid, want []byte) {
		t.Helper()
		b, err := bs.Get(ctx, c)
		if err != nil {
			t.Fatalf("Get(%s): %v", c, err)
		}
		if !bytes.Equal(b.RawData(), want) {
			t.Fatalf("Get(%s): wrong bytes", c)
		}
		if has, _ := bs.Has(ctx, c); !has {
			t.Fatalf("Has(%s) = false", c)
		}
		if n, err := bs.GetSize(ctx, c); err != nil || n != len(want) {
			t.Fatalf("GetSize(%s) = %d, %v", c, n, err)
		}
	}
	blockOf := func(s blockstore.Blockstore, c cid.Cid) []byte {
		b, err := s.Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return b.RawData()
	}
	// Concurrent readers, as bitswap's server has.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for _, c := range chunksOfFile(t, rel.Index, "old") {
				check(c.CID, blockOf(pub, c.CID))
			}
			for _, c := range chunksOfFile(t, rel2.Index, "new") {
				check(c.CID, blockOf(pub2, c.CID))
			}
		})
	}
	wg.Wait()
	// Index blocks come from the store under (the device keeps them).
	check(rel2.IndexRoot, blockOf(pub2, rel2.IndexRoot))
	// The newer copy of a shared chunk changed: the older one serves.
	if err := flipByte(filepath.Join(d2.staging, "shared"), 1); err != nil {
		t.Fatal(err)
	}
	for _, c := range chunksOfFile(t, rel.Index, "shared") {
		check(c.CID, blockOf(pub, c.CID))
	}
	maps.Remove(m1)
	c := chunksOfFile(t, rel.Index, "shared")[0].CID
	if has, _ := bs.Has(ctx, c); has {
		t.Errorf("Has(%s) after its last good copy was removed", c)
	}
	if _, err := bs.Get(ctx, c); !ipld.IsNotFound(err) {
		t.Errorf("Get(%s) = %v, want ipld.ErrNotFound", c, err)
	}
	// Writes go to the store under.
	b := newRawBlock([]byte("a keyring shard"))
	if err := bs.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	if has, _ := d2.store.Has(ctx, b.Cid()); !has {
		t.Error("Put did not reach the store under")
	}
}

// TestChunkMapMemory: ≈ 80 bytes per chunk, whatever the release size:
// the table holds one fixed-size record per distinct block, in a slice
// of exactly that length (heap sampling is too noisy to tell 80 from 100
// bytes here).
func TestChunkMapMemory(t *testing.T) {
	const n = 50_000
	x := &Index{Channel: testChannel, Entries: []Entry{{Path: "big", Type: TypeFile, Mode: 0o644, Size: n * MinChunkSize, NumChunks: n}}}
	x.Chunks = make([]Chunk, n)
	for i := range x.Chunks {
		h, _ := mh.Sum([]byte(strconv.Itoa(i%(n-10))), mh.SHA2_256, -1) // 10 repeats
		x.Chunks[i] = Chunk{CID: cid.NewCidV1(cid.Raw, h), Len: MinChunkSize}
	}
	m, err := NewChunkMap(context.Background(), x, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != n-10 || cap(m.chunks) != n-10 {
		t.Errorf("%d chunks in a table of %d, want %d", m.Len(), cap(m.chunks), n-10)
	}
	per := float64(uintptr(cap(m.chunks))*unsafe.Sizeof(mapChunk{})+uintptr(len(m.files))*unsafe.Sizeof(mapFile{})) / n
	t.Logf("%.1f bytes per chunk", per)
	if per > 100 {
		t.Errorf("%.1f bytes per chunk, want at most 100", per)
	}
}

// TestStagingMap: a device serves the chunks of the release it is
// assembling once they are in staging, and only those.
func TestStagingMap(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(37, 38))
	same := randBytes(r, 2*MaxChunkSize)
	nodes := []node{{path: "a", data: same}, {path: "b", data: same}}
	for i := range 4 {
		nodes = append(nodes, node{path: "f" + strconv.Itoa(i), data: randBytes(r, 2*MaxChunkSize+r.IntN(MaxChunkSize))})
	}
	dir, _, pub, rel := publishNodes(t, ctx, nodes)
	dev := memStore()
	x, err := OpenIndex(ctx, dev, StoreSource{pub}, rel.IndexRoot, &rel.Key, testChannel)
	if err != nil {
		t.Fatal(err)
	}
	staging := filepath.Join(dir, "stage")
	sm, err := NewStagingMap(ctx, x, staging, nil)
	if err != nil {
		t.Fatal(err)
	}
	// served checks that every block the map says it has is the
	// publisher's, and returns how many it has.
	distinct := map[cid.Cid]bool{}
	for _, c := range rel.Index.Chunks {
		distinct[c.CID] = true
	}
	served := func() int {
		n := 0
		for c := range distinct {
			if has, _ := sm.Has(ctx, c); !has {
				continue
			}
			n++
			b, err := sm.Get(ctx, c)
			if err != nil {
				t.Fatalf("Has(%s) but Get: %v", c, err)
			}
			want, _ := pub.Get(ctx, c)
			if !bytes.Equal(b.RawData(), want.RawData()) {
				t.Fatalf("Get(%s): not the publisher's block", c)
			}
		}
		return n
	}
	if n := served(); n != 0 {
		t.Fatalf("%d chunks served before assembly", n)
	}
	// Lists names every chunk block, served or not, and no index block.
	for c := range distinct {
		if !sm.Lists(c) {
			t.Fatalf("Lists(%s) = false for a chunk block", c)
		}
	}
	if sm.Lists(rel.IndexRoot) {
		t.Fatal("Lists(index root) = true")
	}
	opt := AssembleOptions{PlaintextOnly: true, Window: 2, Staged: sm}
	actx, cancel := context.WithCancel(ctx)
	cs := &cancelAfter{src: StoreSource{pub}, cancel: cancel}
	cs.n.Store(4)
	if _, err := Assemble(actx, dev, cs, x, staging, opt); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Assemble = %v", err)
	}
	cancel()
	part := served()
	// A peer asking while the assembly goes on gets what is marked.
	stop := make(chan struct{})
	var reader sync.WaitGroup
	reader.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for c := range distinct {
				if has, _ := sm.Has(ctx, c); has {
					if _, err := sm.Get(ctx, c); err != nil {
						t.Errorf("during assembly, Has(%s) but Get: %v", c, err)
					}
				}
			}
		}
	})
	_, err = Assemble(ctx, dev, StoreSource{pub}, x, staging, opt)
	close(stop)
	reader.Wait()
	if err != nil {
		t.Fatal(err)
	}
	all := served()
	t.Logf("served %d chunks after the interruption, %d at the end", part, all)
	if part == 0 || part >= all || all != sm.Len() {
		t.Errorf("served %d after the interruption and %d at the end, of %d", part, all, sm.Len())
	}
	// A process restarted after the assembly: what the progress
	// file records as complete is served too.
	sm, err = NewStagingMap(ctx, x, staging, nil)
	if err != nil {
		t.Fatal(err)
	}
	opt.Staged = sm
	if _, err := Assemble(ctx, dev, StoreSource{pub}, x, staging, opt); err != nil {
		t.Fatal(err)
	}
	if n := served(); n != sm.Len() {
		t.Errorf("after a restart, %d of %d chunks served", n, sm.Len())
	}
}
