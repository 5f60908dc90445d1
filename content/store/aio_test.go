package store

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	ds "github.com/ipfs/go-datastore"
	"golang.org/x/sys/unix"
)

// newTestQueue returns an AIO queue, or skips where the kernel has none
// (the store then writes with write(2), which the other tests cover).
func newTestQueue(t *testing.T, depth int) *aioQueue {
	t.Helper()
	q, err := newAIOQueue(depth)
	if errors.Is(err, errAIOUnavailable) {
		t.Skipf("no native AIO here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.close() })
	return q
}

// alignedBuf returns n bytes (a multiple of alignment) at an aligned
// address, filled from r.
func alignedBuf(r *rand.Rand, n int) []byte {
	raw := make([]byte, n+alignment)
	skip := int(-uintptr(unsafe.Pointer(&raw[0])) & (alignment - 1))
	b := raw[skip : skip+n : skip+n]
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// openDirectFile opens a file for O_DIRECT writes, or skips where the
// file system has none.
func openDirectFile(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_DIRECT, 0o600)
	if err != nil {
		t.Skipf("no O_DIRECT here: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestAIOQueueWrites writes more buffers than the queue holds, its depth
// in flight at a time and out of order, into a preallocated file; the
// file then holds each at its offset.
func TestAIOQueueWrites(t *testing.T) {
	const depth, n, size = 3, 10, 64 << 10
	q := newTestQueue(t, depth)
	path := filepath.Join(t.TempDir(), "f")
	f := openDirectFile(t, path)
	if err := unix.Fallocate(int(f.Fd()), 0, 0, n*size); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(8, 8))
	bufs := make([][]byte, depth)
	for i := range bufs {
		bufs[i] = alignedBuf(r, size)
	}
	want := make([]byte, n*size)
	order := r.Perm(n)
	free := []int{0, 1, 2}
	for _, i := range order {
		if len(free) == 0 {
			s, err := q.wait()
			if err != nil || s < 0 {
				t.Fatalf("wait = %d, %v", s, err)
			}
			free = append(free, s)
		}
		s := free[0]
		free = free[1:]
		for j := range bufs[s] {
			bufs[s][j] = byte(r.Uint32())
		}
		copy(want[i*size:], bufs[s])
		if err := q.submit(s, f, bufs[s], int64(i*size)); err != nil {
			t.Fatal(err)
		}
	}
	for q.busy > 0 {
		if s, err := q.wait(); err != nil || s < 0 {
			t.Fatalf("wait = %d, %v", s, err)
		}
	}
	if s, err := q.wait(); s != -1 || err != nil {
		t.Errorf("wait with nothing in flight = %d, %v; want -1, nil", s, err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the file does not hold what was written")
	}
}

// TestAIOQueueErrors: a write the kernel refuses at once (a descriptor not
// open for writing) fails its submit; one it refuses on the way (an
// unaligned offset, which O_DIRECT cannot take) fails its wait; the
// queue goes on working after both.
func TestAIOQueueErrors(t *testing.T) {
	q := newTestQueue(t, 2)
	dir := t.TempDir()
	f := openDirectFile(t, filepath.Join(dir, "f"))
	r := rand.New(rand.NewPCG(9, 9))
	b := alignedBuf(r, alignment)

	ro, err := os.Open(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := q.submit(0, ro, b, 0); err == nil {
		t.Error("a write to a read-only descriptor was submitted")
	}
	if q.busy != 0 {
		t.Fatalf("%d writes in flight after a failed submit", q.busy)
	}

	if err := q.submit(0, f, b, 1); err != nil {
		t.Logf("unaligned write refused at submit: %v", err)
	} else if s, err := q.wait(); s != 0 || !errors.Is(err, unix.EINVAL) {
		t.Errorf("unaligned direct write: wait = %d, %v; want 0, EINVAL", s, err)
	}

	if err := q.submit(1, f, b, 0); err != nil {
		t.Fatal(err)
	}
	if s, err := q.wait(); s != 1 || err != nil {
		t.Errorf("wait = %d, %v; want 1, nil", s, err)
	}
}

// TestPackPreallocation: with AIO, the newest pack is preallocated past
// its records (so that direct appends do not extend it); a store opened
// after a crash, with that space still there, holds every record and
// cuts the pack to them; a pack no longer appended to and a closed
// store's newest pack hold no preallocated space.
func TestPackPreallocation(t *testing.T) {
	newTestQueue(t, 1) // skips without AIO
	dir := t.TempDir()
	d := openTestPacks(t, dir, 1<<30)
	r := rand.New(rand.NewPCG(10, 10))
	values := randValues(r, 8, 50_000)
	putN(t, d, 0, values, 4)
	if d.cur.w == nil {
		t.Skip("no O_DIRECT here")
	}
	if d.aio == nil {
		t.Fatal("direct appends did not use AIO")
	}
	p := packFiles(t, dir)[0]
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() <= d.cur.size || fi.Size() != d.cur.alloc {
		t.Fatalf("pack file %d bytes, %d valid, %d preallocated: want preallocated space past the records", fi.Size(), d.cur.size, d.cur.alloc)
	}
	want := map[ds.Key][]byte{}
	for i, v := range values {
		want[key(i)] = v
	}

	// A crash: another store opens the packs as they are.
	valid := d.cur.size
	crashed := openTestPacks(t, dir, 1<<30)
	checkContents(t, crashed, want)
	if fi, _ := os.Stat(p); fi.Size() != valid {
		t.Errorf("pack %d bytes after the reopen, want its valid %d", fi.Size(), valid)
	}
	crashed.Close()
	d.Close()

	// Packs rolled over and a closed store keep no preallocated space.
	d = openTestPacks(t, dir, 100_000)
	more := randValues(r, 12, 50_000)
	putN(t, d, len(values), more, 2)
	for i, v := range more {
		want[key(len(values)+i)] = v
	}
	sizes := map[string]int64{}
	for _, pk := range d.packs {
		sizes[pk.f.Name()] = pk.size
	}
	newest := d.cur.f.Name()
	d.Close()
	files := packFiles(t, dir)
	if len(files) < 3 {
		t.Fatalf("%d packs; the test needs the store to roll over", len(files))
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != sizes[f] {
			t.Errorf("%s: %d bytes on disk, %d valid (newest: %v)", filepath.Base(f), fi.Size(), sizes[f], f == newest)
		}
	}
	d = openTestPacks(t, dir, 100_000)
	defer d.Close()
	checkContents(t, d, want)
}
