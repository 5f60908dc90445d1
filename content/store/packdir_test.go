package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
)

// testDirect is whether test pack stores write with O_DIRECT; tests of
// the write path run both ways.
var testDirect = true

func openTestPacks(t *testing.T, dir string, target int64) *packDir {
	t.Helper()
	d, err := openPackDir(dir, slog.New(slog.DiscardHandler), testDirect)
	if err != nil {
		t.Fatal(err)
	}
	d.packTarget = target
	return d
}

func key(i int) ds.Key { return ds.NewKey(fmt.Sprintf("K%05d", i)) }

// putN stores values[i] under key(first+i), batch at a time.
func putN(t *testing.T, d *packDir, first int, values [][]byte, batch int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < len(values); i += batch {
		b, _ := d.Batch(ctx)
		for j := i; j < min(i+batch, len(values)); j++ {
			b.Put(ctx, key(first+j), values[j])
		}
		if err := b.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// checkContents fails unless d holds exactly want.
func checkContents(t *testing.T, d *packDir, want map[ds.Key][]byte) {
	t.Helper()
	ctx := context.Background()
	for k, v := range want {
		got, err := d.Get(ctx, k)
		if err != nil || !bytes.Equal(got, v) {
			t.Errorf("Get(%s) = %d bytes, %v; want %d bytes", k, len(got), err, len(v))
		}
		if n, err := d.GetSize(ctx, k); err != nil || n != len(v) {
			t.Errorf("GetSize(%s) = %d, %v; want %d", k, n, err, len(v))
		}
	}
	res, err := d.Query(ctx, query.Query{KeysOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	all, err := res.Rest()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(want) {
		t.Errorf("Query lists %d keys, want %d", len(all), len(want))
	}
	for _, e := range all {
		if _, ok := want[ds.RawKey(e.Key)]; !ok {
			t.Errorf("Query lists %s, which should be absent", e.Key)
		}
	}
}

// checkReopened closes d, then checks that it reopens holding exactly want.
func checkReopened(t *testing.T, d *packDir, want map[ds.Key][]byte) {
	t.Helper()
	d.Close()
	d = openTestPacks(t, d.dir, d.packTarget)
	defer d.Close()
	checkContents(t, d, want)
}

func randValues(r *rand.Rand, n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = randBytes(r, size/2+r.IntN(size))
	}
	return out
}

func packFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// TestPackTornTail damages the tail of the newest pack the ways a crash or
// a bad disk can and reopens: every record before the damage is intact,
// the damaged one is gone, the pack is truncated to its valid part, and
// the store takes new writes that survive another reopen.
func TestPackTornTail(t *testing.T) {
	bothWriteModes(t, testPackTornTail)
}

// bothWriteModes runs test with O_DIRECT writes, then with buffered ones.
func bothWriteModes(t *testing.T, test func(*testing.T)) {
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			defer func(old bool) { testDirect = old }(testDirect)
			testDirect = direct
			test(t)
		})
	}
}

func testPackTornTail(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	values := randValues(r, 6, 20_000)
	lastKey := "/" + key(5).Name()
	lastHead := recHeaderSize + int64(len(lastKey))
	tests := []struct {
		name   string
		damage func(data []byte, last, end int64) []byte // the last record: offset, end
		lost   int                                       // records lost at the end
	}{
		{"whole", func(b []byte, _, _ int64) []byte { return b }, 0},
		{"cut in header", func(b []byte, last, _ int64) []byte { return b[:last+7] }, 1},
		{"cut in key", func(b []byte, last, _ int64) []byte { return b[:last+recHeaderSize+2] }, 1},
		{"cut in value", func(b []byte, _, end int64) []byte { return b[:end-100] }, 1},
		{"cut before last byte", func(b []byte, _, end int64) []byte { return b[:end-1] }, 1},
		{"cut in padding", func(b []byte, _, end int64) []byte { return b[:end+1] }, 0},
		{"garbled value", func(b []byte, _, end int64) []byte { b[end-50] ^= 1; return b }, 1},
		{"garbled key", func(b []byte, last, _ int64) []byte { b[last+recHeaderSize+1] ^= 0x20; return b }, 1},
		{"garbled length", func(b []byte, last, _ int64) []byte { b[last+8]++; return b }, 1},
		{"garbled magic", func(b []byte, last, _ int64) []byte { b[last] = 'X'; return b }, 1},
		{"garbled padding", func(b []byte, _, end int64) []byte { b[end+1] = 1; return b }, 0},
		{"zeros appended", func(b []byte, _, _ int64) []byte { return append(b, make([]byte, 4096)...) }, 0},
		{"garbage appended", func(b []byte, _, _ int64) []byte { return append(b, randBytes(r, 100)...) }, 0},
		{"header appended without value", func(b []byte, last, _ int64) []byte { return append(b, b[last:last+lastHead]...) }, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			d := openTestPacks(t, dir, 1<<30)
			putN(t, d, 0, values[:3], 3)
			putN(t, d, 3, values[3:], 1) // the last record ends the pack
			last, end := d.index[lastKey].off, d.index[lastKey].off+d.index[lastKey].size()
			d.Close()
			p := packFiles(t, dir)[0]
			data, _ := os.ReadFile(p)
			damaged := tc.damage(bytes.Clone(data), last, end)
			valid := int64(len(damaged))
			switch {
			case tc.lost > 0:
				valid = last
			case len(damaged) > len(data):
				valid = int64(len(data)) // what was appended is cut
			case len(damaged) == len(data) && !bytes.Equal(damaged, data):
				valid = end // the garbled padding is cut
			}
			if err := os.WriteFile(p, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			d = openTestPacks(t, dir, 1<<30)
			want := map[ds.Key][]byte{}
			for i, v := range values[:len(values)-tc.lost] {
				want[key(i)] = v
			}
			checkContents(t, d, want)
			if fi, _ := os.Stat(p); fi.Size() != valid {
				t.Errorf("pack is %d bytes after open, want its valid %d", fi.Size(), valid)
			}
			extra := []byte("written after the recovery")
			if err := d.Put(ctx, ds.NewKey("after"), extra); err != nil {
				t.Fatal(err)
			}
			want[ds.NewKey("after")] = extra
			checkReopened(t, d, want)
		})
	}
}

// TestPackDeleteAndReopen: deletes (tombstones) survive a reopen, in any
// order with puts, in batches and alone.
func TestPackDeleteAndReopen(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		ops  func(d *packDir) // after keys 0..9 are stored
		gone []int
	}{
		{"delete one", func(d *packDir) { d.Delete(ctx, key(3)) }, []int{3}},
		{"delete absent", func(d *packDir) { d.Delete(ctx, key(99)) }, nil},
		{"delete twice", func(d *packDir) { d.Delete(ctx, key(3)); d.Delete(ctx, key(3)) }, []int{3}},
		{"delete then put again", func(d *packDir) { d.Delete(ctx, key(3)); d.Put(ctx, key(3), []byte("v3")) }, nil},
		{"batch put then delete", func(d *packDir) {
			b, _ := d.Batch(ctx)
			b.Put(ctx, key(20), []byte("x"))
			b.Delete(ctx, key(20))
			b.Delete(ctx, key(4))
			b.Commit(ctx)
		}, []int{4}},
		{"batch delete then put", func(d *packDir) {
			b, _ := d.Batch(ctx)
			b.Delete(ctx, key(5))
			b.Put(ctx, key(5), []byte("v5"))
			b.Commit(ctx)
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			d := openTestPacks(t, dir, 1<<30)
			want := map[ds.Key][]byte{}
			for i := range 10 {
				v := fmt.Appendf(nil, "v%d", i)
				want[key(i)] = v
				if err := d.Put(ctx, key(i), v); err != nil {
					t.Fatal(err)
				}
			}
			tc.ops(d)
			for _, i := range tc.gone {
				delete(want, key(i))
			}
			checkContents(t, d, want)
			checkReopened(t, d, want)
		})
	}
}

// storedSize is the bytes of d's pack files, less the space preallocate
// reserved past the newest pack's valid part (on disk, not in the store).
func storedSize(t *testing.T, d *packDir) int64 {
	d.wmu.Lock()
	var slack int64
	if d.cur != nil && d.cur.alloc > 0 {
		slack = d.cur.alloc - d.cur.size
	}
	d.wmu.Unlock()
	return dirSize(t, d.dir) - slack
}

func dirSize(t *testing.T, dir string) int64 {
	var n int64
	for _, p := range packFiles(t, dir) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// TestPackCompaction deletes records in patterns across many packs, then
// compacts: empty packs are removed, mostly dead ones rewritten, disk
// space shrinks, every live value is intact, and after a reopen the
// deleted keys stay deleted (tombstones carried over where needed).
func TestPackCompaction(t *testing.T) { bothWriteModes(t, testPackCompaction) }

func testPackCompaction(t *testing.T) {
	const n = 60
	tests := []struct {
		name             string
		dead             func(i int) bool
		removed, rewrote bool // expected at least one
	}{
		{"nothing dead", func(int) bool { return false }, false, false},
		{"all dead", func(int) bool { return true }, true, false},
		{"first two packs dead", func(i int) bool { return i < 24 }, true, false},
		{"most dead, scattered", func(i int) bool { return i%5 != 0 }, true, true}, // then the tombstones are not needed
		{"a third dead", func(i int) bool { return i%3 == 0 }, false, false},       // the tombstones' pack is needed
		{"mixed", func(i int) bool { return i < 20 || i%4 != 0 }, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			r := rand.New(rand.NewPCG(6, 6))
			d := openTestPacks(t, dir, 100_000) // about 10 records a pack
			values := make([][]byte, n)         // 12 records a pack
			for i := range values {
				values[i] = randBytes(r, 10_000)
			}
			putN(t, d, 0, values, 4)
			want := map[ds.Key][]byte{}
			for i, v := range values {
				if tc.dead(i) {
					if err := d.Delete(ctx, key(i)); err != nil {
						t.Fatal(err)
					}
				} else {
					want[key(i)] = v
				}
			}
			// Later writes go to a fresh pack: compaction never touches the
			// newest.
			d.wmu.Lock()
			d.startPack()
			d.wmu.Unlock()
			before := storedSize(t, d)
			st, err := d.compact(ctx)
			if err != nil {
				t.Fatal(err)
			}
			after := storedSize(t, d)
			if (st.Removed > 0) != tc.removed || (st.Rewritten > 0) != tc.rewrote {
				t.Errorf("compact %+v; want removals %v, rewrites %v", st, tc.removed, tc.rewrote)
			}
			if st.Freed != before-after {
				t.Errorf("compact says it freed %d bytes; the packs shrank by %d", st.Freed, before-after)
			}
			if (tc.removed || tc.rewrote) && after >= before {
				t.Errorf("packs %d bytes before compaction, %d after", before, after)
			}
			checkContents(t, d, want)
			if st2, err := d.compact(ctx); err != nil || st2.Removed+st2.Rewritten != 0 {
				t.Errorf("second compaction = %+v, %v; want nothing to do", st2, err)
			}
			checkReopened(t, d, want)
		})
	}
}

// TestPackTombstoneCarriedOver: a block deleted in a pack that compaction
// removes stays deleted after a reopen while the pack holding its record
// lives on (the tombstone is carried to the newest pack).
func TestPackTombstoneCarriedOver(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := openTestPacks(t, dir, 20_000)
	big := bytes.Repeat([]byte{1}, 8000) // a record and its padding: 8 KiB
	d.Put(ctx, key(1), big)              // pack 1: the record to delete, and two live ones
	d.Put(ctx, key(2), big)
	d.Put(ctx, key(8), big)
	d.Put(ctx, key(3), big) // pack 2
	d.Delete(ctx, key(1))   // tombstone in pack 2
	d.Delete(ctx, key(3))   // tombstone in pack 2 of a record in pack 2
	d.Put(ctx, key(4), big)
	d.Delete(ctx, key(4)) // pack 3: pack 2 holds nothing live
	d.Put(ctx, key(5), big)
	d.Put(ctx, key(6), big)
	d.Put(ctx, key(7), big) // pack 4, the newest
	st, err := d.compact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Removed != 1 || len(packFiles(t, dir)) != 3 {
		t.Fatalf("compact %+v, packs %v; want pack 2 removed", st, packFiles(t, dir))
	}
	want := map[ds.Key][]byte{key(2): big, key(8): big, key(5): big, key(6): big, key(7): big}
	checkContents(t, d, want)
	checkReopened(t, d, want)
}

// TestPackConcurrent reads, writes, deletes and compacts at once (for the
// race detector): every read answers the stored value or not found.
func TestPackConcurrent(t *testing.T) {
	ctx := context.Background()
	d := openTestPacks(t, t.TempDir(), 50_000)
	defer d.Close()
	r := rand.New(rand.NewPCG(7, 7))
	values := randValues(r, 200, 4000)
	putN(t, d, 0, values[:100], 8)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 400 {
				k := (i*7 + g) % 200
				v, err := d.Get(ctx, key(k))
				if err == nil && !bytes.Equal(v, values[k]) {
					t.Errorf("Get(%d) returned a wrong value", k)
				}
				if err != nil && !errors.Is(err, ds.ErrNotFound) {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for i := 100; i < 200; i++ {
			if err := d.Put(ctx, key(i), values[i]); err != nil {
				t.Error(err)
			}
			if i%3 == 0 {
				d.Delete(ctx, key(i-100))
			}
		}
	})
	wg.Go(func() {
		for range 5 {
			if _, err := d.compact(ctx); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
}

// TestPackAfterClose: a reader or writer that outlives the store gets an
// error, not a crash.
func TestPackAfterClose(t *testing.T) {
	ctx := context.Background()
	d := openTestPacks(t, t.TempDir(), 1<<20)
	if err := d.Put(ctx, key(1), []byte("v")); err != nil {
		t.Fatal(err)
	}
	d.Close()
	tests := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := d.Get(ctx, key(1)); return err }},
		{"Has", func() error { _, err := d.Has(ctx, key(1)); return err }},
		{"GetSize", func() error { _, err := d.GetSize(ctx, key(1)); return err }},
		{"Put", func() error { return d.Put(ctx, key(2), []byte("w")) }},
		{"Delete", func() error { return d.Delete(ctx, key(1)) }},
		{"Query", func() error { _, err := d.Query(ctx, query.Query{}); return err }},
		{"compact", func() error { _, err := d.compact(ctx); return err }},
	}
	for _, tc := range tests {
		if err := tc.call(); !errors.Is(err, errClosed) {
			t.Errorf("%s after Close = %v, want errClosed", tc.name, err)
		}
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}
