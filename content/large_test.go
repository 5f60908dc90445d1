package content

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRoundTripLargeSparse publishes and assembles a 1 GiB file made of
// long zero runs and random regions (4 MiB of random data every 64 MiB),
// and checks the staged copy byte for byte.
func TestRoundTripLargeSparse(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB round trip")
	}
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	p := filepath.Join(src, "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	const size, stride, region = 1 << 30, 64 << 20, 4 << 20
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(17, 18))
	for off := int64(0); off < size; off += stride {
		if _, err := f.WriteAt(randBytes(r, region), off+int64(r.IntN(stride-region))); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	t0 := time.Now()
	pub := memStore()
	rel := publishTree(t, ctx, pub, src, nil)
	t1 := time.Now()
	if rel.Size != size {
		t.Errorf("release size %d, want %d", rel.Size, size)
	}
	// With plaintext only, the zero chunks (one block) are copied from
	// the first one written to staging.
	for _, m := range assembleModes {
		t.Run(m.name, func(t *testing.T) {
			t1 := time.Now()
			d := assembleReleaseOpt(t, ctx, pub, memStore(), rel, filepath.Join(dir, "stage-"+m.name), m.opt)
			t2 := time.Now()
			if !sameFile(t, p, filepath.Join(d.staging, "disk.img")) {
				t.Fatal("1 GiB file differs after the round trip")
			}
			for c, n := range d.source.got {
				if n != 1 {
					t.Errorf("block %s fetched %d times", c, n)
				}
			}
			t.Logf("1 GiB: %d chunks (%d distinct), assemble+verify %v", len(rel.Index.Chunks), rel.Delta.Chunks, t2.Sub(t1))
			os.RemoveAll(d.staging)
		})
	}
	t.Logf("publish %v", t1.Sub(t0))
}
