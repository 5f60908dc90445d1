package content

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// writeVersions writes old and next as dir/v1/image and dir/v2/image.
func writeVersions(t *testing.T, dir string, old, next []byte) (v1, v2 string) {
	t.Helper()
	v1, v2 = filepath.Join(dir, "v1"), filepath.Join(dir, "v2")
	for p, d := range map[string][]byte{v1: old, v2: next} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "image"), d, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return v1, v2
}

func TestDelta(t *testing.T) {
	ctx := context.Background()
	size := 64 << 20
	if testing.Short() {
		size = 16 << 20
	}
	old, next := deltaInput(rand.New(rand.NewPCG(11, 12)), size)
	dir := t.TempDir()
	v1, v2 := writeVersions(t, dir, old, next)
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

// TestDeltaFromInstalledTree: a plaintext-only device holding release 1
// installed copies the chunks release 2 shares with it from there and
// fetches exactly the new ones; a changed file of release 1 is dropped
// from its map and what it held fetched instead.
func TestDeltaFromInstalledTree(t *testing.T) {
	ctx := context.Background()
	size := 16 << 20
	old, next := deltaInput(rand.New(rand.NewPCG(41, 42)), size)
	dir := t.TempDir()
	v1, v2 := writeVersions(t, dir, old, next)
	pub := memStore()
	r1 := publishTree(t, ctx, pub, v1, nil)
	r2 := publishTree(t, ctx, pub, v2, r1.Index)
	for _, tc := range []struct {
		name   string
		tamper bool
	}{{"intact", false}, {"installed file changed", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dev := memStore()
			plain := AssembleOptions{PlaintextOnly: true}
			d1 := assembleReleaseOpt(t, ctx, pub, dev, r1, filepath.Join(t.TempDir(), "installed"), plain)
			var logs logBuffer
			m1, err := NewChunkMap(ctx, d1.index, d1.staging, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if tc.tamper {
				if err := flipByte(filepath.Join(d1.staging, "image"), int64(size/2)); err != nil {
					t.Fatal(err)
				}
			}
			var prev ChunkMaps
			prev.Add(m1)
			plain.Previous = &prev
			src := newCounting(StoreSource{pub})
			x, err := OpenIndex(ctx, dev, src, r2.IndexRoot, &r2.Key, testChannel)
			if err != nil {
				t.Fatal(err)
			}
			stage := filepath.Join(t.TempDir(), "stage")
			st, err := Assemble(ctx, dev, src, x, stage, plain)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyStaged(ctx, x, stage); err != nil {
				t.Fatal(err)
			}
			compareTrees(t, v2, stage)
			chunks := 0
			for c, n := range src.got {
				if n != 1 {
					t.Errorf("block %s fetched %d times", c, n)
				}
				if slices.ContainsFunc(r2.Index.Chunks, func(k Chunk) bool { return k.CID.Equals(c) }) {
					chunks++
				}
			}
			t.Logf("fetched %d chunk blocks (%d new), copied %d of %d bytes", chunks, r2.Delta.NewChunks, st.Copied, st.Written)
			if !tc.tamper {
				if chunks != r2.Delta.NewChunks {
					t.Errorf("fetched %d chunk blocks, want the %d new ones", chunks, r2.Delta.NewChunks)
				}
				if st.Copied != r2.Delta.Bytes-r2.Delta.NewBytes {
					t.Errorf("copied %d bytes, want %d", st.Copied, r2.Delta.Bytes-r2.Delta.NewBytes)
				}
				return
			}
			if chunks <= r2.Delta.NewChunks {
				t.Errorf("fetched %d chunk blocks although a reused chunk changed on disk", chunks)
			}
			if !strings.Contains(logs.String(), "an installed file changed") {
				t.Errorf("nothing logged: %q", logs.String())
			}
			if has, _ := m1.Has(ctx, r1.Index.Chunks[0].CID); has {
				t.Error("the changed file is still in its map")
			}
		})
	}
}
