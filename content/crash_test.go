package content

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// cancelAfter cancels the assembly after it has delivered n blocks.
type cancelAfter struct {
	src    BlockSource
	n      atomic.Int64
	cancel context.CancelFunc
}

func (s *cancelAfter) GetBlocks(ctx context.Context, cids []cid.Cid) <-chan blocks.Block {
	in := s.src.GetBlocks(ctx, cids)
	out := make(chan blocks.Block)
	go func() {
		defer close(out)
		for b := range in {
			if s.n.Add(-1) < 0 {
				s.cancel()
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

// reversed delivers each request's blocks in reverse order, so that the
// later chunks of a window are written to staging before the earlier ones.
type reversed struct{ src BlockSource }

func (s reversed) GetBlocks(ctx context.Context, cids []cid.Cid) <-chan blocks.Block {
	in := s.src.GetBlocks(ctx, cids)
	out := make(chan blocks.Block)
	go func() {
		defer close(out)
		var got []blocks.Block
		for b := range in {
			got = append(got, b)
		}
		for i := len(got) - 1; i >= 0; i-- {
			select {
			case out <- got[i]:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// TestResumeAfterCancel interrupts assembly at random points until it
// completes and checks that no block was ever fetched twice and the staged
// tree is the release. With blocks delivered in reverse, chunks land in
// staging out of order, and a progress save must still claim only entries
// whose every chunk was written.
func TestResumeAfterCancel(t *testing.T) {
	type resumeCase struct {
		every   uint64 // progress after each entry, and rarely
		reverse bool
		opt     AssembleOptions
	}
	var cases []resumeCase
	for _, m := range assembleModes {
		cases = append(cases, resumeCase{1, false, m.opt}, resumeCase{64 << 20, false, m.opt}, resumeCase{1, true, m.opt})
	}
	for _, tc := range cases {
		name := "progressEvery=" + strconv.FormatUint(tc.every, 10)
		if tc.reverse {
			name += "/reversed"
		}
		if tc.opt.PlaintextOnly {
			name += "/plaintext"
		}
		every := tc.every
		t.Run(name, func(t *testing.T) {
			old := progressEvery
			progressEvery = every
			defer func() { progressEvery = old }()
			ctx := context.Background()
			r := rand.New(rand.NewPCG(13, every))
			nodes := []node{{path: "d", dir: true, mode: 0o555}}
			for i := range 12 {
				nodes = append(nodes, node{path: "d/f" + strconv.Itoa(i), data: randBytes(r, r.IntN(4*MaxChunkSize)), mode: 0o640})
			}
			dir, src, pub, rel := publishNodes(t, ctx, nodes)
			dev := memStore()
			counting := newCounting(StoreSource{pub})
			x, err := OpenIndex(ctx, dev, counting, rel.IndexRoot, &rel.Key, testChannel)
			if err != nil {
				t.Fatal(err)
			}
			staging := filepath.Join(dir, "stage")
			interrupted := 0
			for attempt := 0; ; attempt++ {
				if attempt > 200 {
					t.Fatal("assembly never completed")
				}
				actx, cancel := context.WithCancel(ctx)
				var src BlockSource = StoreSource{pub}
				if tc.reverse {
					src = reversed{src}
				}
				cs := &cancelAfter{src: src, cancel: cancel}
				cs.n.Store(int64(r.IntN(6)))
				counting.src = cs
				opt := tc.opt
				opt.Window = 3
				_, err := Assemble(actx, dev, counting, x, staging, opt)
				cancel()
				if err == nil {
					break
				}
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("attempt %d: %v", attempt, err)
				}
				interrupted++
			}
			if interrupted < 3 {
				t.Errorf("only %d interruptions; the test did not exercise resume", interrupted)
			}
			for c, n := range counting.got {
				if n != 1 {
					t.Errorf("block %s fetched %d times", c, n)
				}
			}
			if err := VerifyStaged(ctx, x, staging); err != nil {
				t.Fatal(err)
			}
			compareTrees(t, src, staging)
			if tc.opt.PlaintextOnly {
				// Only blocks received while a run was stopping are in
				// the store: at most two windows per interruption.
				stored := 0
				for _, c := range rel.Index.Chunks {
					if has, _ := dev.Has(ctx, c.CID); has {
						stored++
					}
				}
				if stored > interrupted*2*3 {
					t.Errorf("%d chunk blocks stored after %d interruptions", stored, interrupted)
				}
				t.Logf("%d interruptions, %d chunk blocks of %d spilled to the store", interrupted, stored, len(rel.Index.Chunks))
			}
		})
	}
}

func TestVerifyStagedDetects(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(15, 16))
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeTree(t, src, []node{{path: "d", dir: true}, {path: "d/f", data: randBytes(r, 300_000)}, {path: "l", target: "d/f"}})
	pub := memStore()
	rel := publishTree(t, ctx, pub, src, nil)
	tests := []struct {
		name string
		edit func(staging string) error
	}{
		{"byte changed", func(s string) error { return flipByte(filepath.Join(s, "d/f"), 200_000) }},
		{"extra file", func(s string) error { return writeFileMode(filepath.Join(s, "d/extra"), 0o644) }},
		{"mode changed", func(s string) error { return chmod(filepath.Join(s, "d/f"), 0o600) }},
		{"link retargeted", func(s string) error { return relink(filepath.Join(s, "l"), "d") }},
		{"file removed", func(s string) error { return remove(filepath.Join(s, "d/f")) }},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			staging := filepath.Join(dir, "stage"+strconv.Itoa(i))
			if _, err := Assemble(ctx, memStore(), StoreSource{pub}, rel.Index, staging, AssembleOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := VerifyStaged(ctx, rel.Index, staging); err != nil {
				t.Fatalf("fresh staging: %v", err)
			}
			if err := tc.edit(staging); err != nil {
				t.Fatal(err)
			}
			if err := VerifyStaged(ctx, rel.Index, staging); !errors.Is(err, ErrStagingIncomplete) {
				t.Fatalf("VerifyStaged = %v, want ErrStagingIncomplete", err)
			}
		})
	}
}

// TestPlaintextResumeHashesStaging damages a plaintext-only staging tree
// the way a power loss or a stray writer can, with the progress file
// claiming nothing, and resumes: exactly the chunks that no longer hash
// to the index are fetched again, and the tree is the release.
func TestPlaintextResumeHashesStaging(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(21, 22))
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	var nodes []node
	for i := range 4 {
		nodes = append(nodes, node{path: "f" + strconv.Itoa(i), data: randBytes(r, 3*MaxChunkSize+r.IntN(MaxChunkSize)), mode: 0o444})
	}
	writeTree(t, src, nodes)
	pub := memStore()
	rel := publishTree(t, ctx, pub, src, nil)
	chunksOf := func(name string) []Chunk {
		for _, e := range rel.Index.Entries {
			if e.Path == name {
				return rel.Index.Chunks[e.FirstChunk : e.FirstChunk+e.NumChunks]
			}
		}
		t.Fatalf("no entry %s", name)
		return nil
	}
	// from returns the chunks of name that end after byte off.
	from := func(name string, off int64) []Chunk {
		var out []Chunk
		var end int64
		for _, c := range chunksOf(name) {
			end += int64(c.Len)
			if end > off {
				out = append(out, c)
			}
		}
		return out
	}
	tests := []struct {
		name string
		edit func(stage string) error
		want []Chunk // fetched again
	}{
		{"untouched", func(string) error { return nil }, nil},
		{"byte flipped", func(s string) error {
			return flipByte(filepath.Join(s, "f1"), int64(chunksOf("f1")[0].Len)+5)
		}, chunksOf("f1")[1:2]},
		{"truncated", func(s string) error {
			return os.Truncate(filepath.Join(s, "f2"), int64(chunksOf("f2")[0].Len)+7)
		}, from("f2", int64(chunksOf("f2")[0].Len))},
		{"removed", func(s string) error { return os.Remove(filepath.Join(s, "f0")) }, chunksOf("f0")},
		{"replaced by a symlink", func(s string) error { return relink(filepath.Join(s, "f3"), "f0") }, chunksOf("f3")},
		{"grown", func(s string) error {
			f, err := os.OpenFile(filepath.Join(s, "f1"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte("tail"))
			return err
		}, nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stage := filepath.Join(dir, "stage"+strconv.Itoa(i))
			dev := memStore()
			d := assembleReleaseOpt(t, ctx, pub, dev, rel, stage, AssembleOptions{PlaintextOnly: true})
			// A crash before anything was recorded as complete.
			id, err := indexID(ctx, d.index)
			if err != nil {
				t.Fatal(err)
			}
			if err := saveProgress(stage+".progress", id, 0); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(stage, "f1"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := tc.edit(stage); err != nil {
				t.Fatal(err)
			}
			again := newCounting(StoreSource{pub})
			st, err := Assemble(ctx, dev, again, d.index, stage, AssembleOptions{PlaintextOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			want := map[cid.Cid]int{}
			var wantBytes uint64
			for _, c := range tc.want {
				want[c.CID] = 1
				wantBytes += uint64(c.Len)
			}
			if len(again.got) != len(want) {
				t.Errorf("fetched %d blocks, want %d", len(again.got), len(want))
			}
			for c, n := range again.got {
				if want[c] != n {
					t.Errorf("block %s fetched %d times, want %d", c, n, want[c])
				}
			}
			if st.Written != wantBytes || st.Kept != rel.Size-wantBytes {
				t.Errorf("written %d, kept %d; want %d and %d", st.Written, st.Kept, wantBytes, rel.Size-wantBytes)
			}
			if err := VerifyStaged(ctx, d.index, stage); err != nil {
				t.Fatal(err)
			}
			compareTrees(t, src, stage)
		})
	}
}
