package content

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// deltaInput returns a 64 MiB file and its next version: 1% of the bytes
// rewritten in 4 places, and 100 bytes inserted near the start.
func deltaInput(r *rand.Rand, size int) (old, next []byte) {
	old = randBytes(r, size)
	next = slices.Clone(old)
	changed := size / 100
	for i := range 4 {
		off := (i + 1) * size / 5
		copy(next[off:off+changed/4], randBytes(r, changed/4))
	}
	ins := randBytes(r, 100)
	next = slices.Insert(next, 4096, ins...)
	return old, next
}

func TestDelta(t *testing.T) {
	ctx := context.Background()
	size := 64 << 20
	if testing.Short() {
		size = 16 << 20
	}
	old, next := deltaInput(rand.New(rand.NewPCG(11, 12)), size)
	dir := t.TempDir()
	v1, v2 := filepath.Join(dir, "v1"), filepath.Join(dir, "v2")
	for p, d := range map[string][]byte{v1: old, v2: next} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "image"), d, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pub := memStore()
	r1 := publishTree(t, ctx, pub, v1, nil)
	if r1.Delta.NewChunks != r1.Delta.Chunks {
		t.Errorf("first release: %d of %d chunks new, want all", r1.Delta.NewChunks, r1.Delta.Chunks)
	}
	r2 := publishTree(t, ctx, pub, v2, r1.Index)
	d := r2.Delta
	t.Logf("delta: %d of %d chunks new, %d of %d bytes new, %.2f%% reused", d.NewChunks, d.Chunks, d.NewBytes, d.Bytes, 100*d.ReusedFraction())
	if d.ReusedFraction() < 0.95 {
		t.Errorf("reused %.2f%% of chunk bytes, want at least 95%%", 100*d.ReusedFraction())
	}
	if d.NewChunks == 0 {
		t.Error("no new chunks although the file changed")
	}

	// A device holding release 1 fetches exactly the new chunk blocks plus
	// the index blocks of release 2.
	dev := memStore()
	assembleRelease(t, ctx, pub, dev, r1, filepath.Join(dir, "s1"))
	d2 := assembleRelease(t, ctx, pub, dev, r2, filepath.Join(dir, "s2"))
	compareTrees(t, v2, d2.staging)
	indexBlocks := 0
	for c := range d2.source.got {
		if !slices.ContainsFunc(r2.Index.Chunks, func(k Chunk) bool { return k.CID.Equals(c) }) {
			indexBlocks++
		}
	}
	if got := len(d2.source.got) - indexBlocks; got != d.NewChunks {
		t.Errorf("device fetched %d chunk blocks for release 2, want the %d new ones", got, d.NewChunks)
	}
}
