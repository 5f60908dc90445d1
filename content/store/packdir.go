package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"golang.org/x/sys/unix"

	"github.com/meshota/meshota/content/atomicfile"
)

// packDir is a go-datastore appending values to pack files (dir/NNNNNNNN.pack,
// records as in packrecord.go) with the index (key → pack, offset, length)
// in memory, rebuilt at open by scanning the packs. A Put or a batch
// Commit appends its records to the newest pack (4 KiB-aligned, with
// O_DIRECT through a 1 MiB aligned buffer where the file system has it)
// and calls fdatasync once, so a commit costs one flush whatever its
// number of blocks, and no file is created per block; concurrent Puts
// share one append (groupcommit.go). Reads are preads on
// shared handles (through the page cache). Only the newest pack is ever appended to (a new one is started,
// and its name made durable, once the previous one is synced and at least
// packTarget long), so after a crash only its tail can be torn: open reads
// and checks every record of it and truncates it at the first record that
// is not whole and valid; in older packs headers and keys are checked.
//
// Delete appends a tombstone naming the deleted record's location (not
// synced: a crash may bring a deleted block back, which is harmless in a
// content-addressed store, and the next GC deletes it again). compact
// removes packs without live records and rewrites packs that are mostly
// dead, carrying over the tombstones still needed.
type packDir struct {
	dir        string
	packTarget int64
	log        *slog.Logger

	wmu        sync.Mutex // appends, deletes and compaction; held before mu
	cur        *pack      // the pack appended to; nil before the first append
	nextID     uint32
	buf        []byte                // record heads of an append
	abufs      [directBuffers][]byte // aligned staging for direct writes: one filled while the others are written
	direct     bool                  // write synced appends with O_DIRECT when the file system can
	aio        *aioQueue             // writes abufs to the O_DIRECT files (aio.go); nil before the first or without AIO
	noAIO      bool                  // AIO failed: direct writes go through write(2)
	noPrealloc bool                  // fallocate failed: appends extend the file
	mapped     []byte                // abufs' memory when mmapped; unmapped at Close

	gmu     sync.Mutex // pending; a leaf: held briefly, never while waiting
	pending *putGroup  // Puts waiting for the next append (groupcommit.go)

	mu     sync.RWMutex // index and packs; readers hold it across their pread
	index  map[string]loc
	packs  map[uint32]*pack
	closed bool
}

// errClosed answers every call after Close (a reader that outlives the
// store gets an error, not a crash).
var errClosed = errors.New("pack datastore: closed")

// loc is where a value lives: its record's pack and offset, the length of
// the record's header and key, and the value's length.
type loc struct {
	pack uint32
	off  int64
	hlen uint32
	vlen uint32
}

func (l loc) size() int64 { return int64(l.hlen) + int64(l.vlen) }

type pack struct {
	id    uint32
	f     *os.File         // reads, buffered writes, sync
	w     *os.File         // O_DIRECT writes to the newest pack, if the file system has them
	size  int64            // bytes of valid records and padding
	alloc int64            // the file's length when preallocated past size (fallocate), else 0
	live  int64            // bytes of records the index points to
	tombs map[uint32]int64 // bytes of tombstones by the pack they delete from
}

// needed is the bytes of p worth keeping: its live records and the
// tombstones of records in other packs that still exist (d.mu held).
func (d *packDir) needed(p *pack) int64 {
	n := p.live
	for t, b := range p.tombs {
		if _, ok := d.packs[t]; ok && t != p.id {
			n += b
		}
	}
	return n
}

func (p *pack) addTomb(target uint32, size int64) {
	if p.tombs == nil {
		p.tombs = map[uint32]int64{}
	}
	p.tombs[target] += size
}

const defaultPackTarget = 64 << 20

var _ ds.Batching = (*packDir)(nil)

func packName(id uint32) string { return fmt.Sprintf("%08d.pack", id) }

// openPackDir opens the packs in dir; direct: write synced appends with
// O_DIRECT where the file system has it.
func openPackDir(dir string, log *slog.Logger, direct bool) (*packDir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []uint32
	for _, e := range ents {
		n, ok := strings.CutSuffix(e.Name(), ".pack")
		if id, err := strconv.ParseUint(n, 10, 32); ok && err == nil && e.Type().IsRegular() {
			ids = append(ids, uint32(id))
		}
	}
	slices.Sort(ids)
	d := &packDir{dir: dir, packTarget: defaultPackTarget, log: log, index: map[string]loc{}, packs: map[uint32]*pack{}, nextID: 1, direct: direct}
	for i, id := range ids {
		if err := d.load(id, i == len(ids)-1); err != nil {
			d.Close()
			return nil, fmt.Errorf("pack %s: %w", packName(id), err)
		}
		d.nextID = id + 1
	}
	if len(ids) > 0 {
		d.cur = d.packs[ids[len(ids)-1]]
		d.openDirect(d.cur)
	}
	return d, nil
}

// load scans pack id into the index; last is the pack appended to, whose
// torn tail (if any) is truncated.
func (d *packDir) load(id uint32, last bool) error {
	f, err := os.OpenFile(filepath.Join(d.dir, packName(id)), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	p := &pack{id: id, f: f}
	d.packs[id] = p
	end, err := scanPack(f, fi.Size(), last, func(r record) {
		switch r.kind {
		case recPut:
			d.setLocked(r.key, loc{pack: id, off: r.off, hlen: r.hlen, vlen: r.vlen})
		case recTombstone:
			p.addTomb(r.target.pack, r.size())
			if l, ok := d.index[r.key]; ok && l.pack == r.target.pack && l.off == r.target.off {
				d.deleteLocked(r.key)
			}
		}
	})
	if err != nil {
		return err
	}
	p.size = end
	if end < fi.Size() {
		if !last {
			// Never appended to since it was synced: the disk damaged
			// it. The records before the damage stay readable.
			d.log.Warn("pack damaged; its records after the damage are lost", "pack", f.Name(), "valid", end, "size", fi.Size())
			return nil
		}
		d.log.Info("truncating a pack after its last valid record (a torn append, or space preallocated before a crash)", "pack", f.Name(), "valid", end, "size", fi.Size())
		if err := f.Truncate(end); err != nil {
			return err
		}
		return unix.Fdatasync(int(f.Fd()))
	}
	return nil
}

// setLocked points key at l (d.mu held or not yet shared).
func (d *packDir) setLocked(key string, l loc) {
	if old, ok := d.index[key]; ok {
		d.packs[old.pack].live -= old.size()
	}
	d.index[key] = l
	d.packs[l.pack].live += l.size()
}

func (d *packDir) deleteLocked(key string) {
	if old, ok := d.index[key]; ok {
		d.packs[old.pack].live -= old.size()
		delete(d.index, key)
	}
}

// op is one record to append: a put of value, or a tombstone (del) for
// key's current record or, when carried over by compaction, for target.
type op struct {
	key    string
	value  []byte
	del    bool
	carry  bool
	target loc
	crc    uint32 // the value's CRC-32C when hasCRC (checkedBlock)
	hasCRC bool
}

// appendOps appends ops as records to the newest pack (starting a new one
// first if it is full), with one fdatasync if sync, and applies them to
// the index in order. d.wmu must be held.
func (d *packDir) appendOps(ops []op, sync bool) error {
	if d.closed {
		return errClosed
	}
	if len(ops) == 0 {
		return nil
	}
	if d.cur == nil || d.cur.size >= d.packTarget {
		if err := d.startPack(); err != nil {
			return err
		}
	}
	p := d.cur
	// A synced append starts at a multiple of alignment and is padded to
	// one (direct I/O needs it); the scan skips the zeros.
	off := p.size
	if sync {
		off = alignUp(p.size)
	}
	type pending struct {
		op
		l          loc
		start, end int // head in d.buf
	}
	recs := make([]pending, 0, len(ops))
	set := map[string]*loc{} // keys this append already wrote; nil: deleted
	d.buf = d.buf[:0]
	for _, o := range ops {
		kind, v := byte(recPut), o.value
		if o.del {
			kind = recTombstone
			t, ok := o.target, o.carry
			if !o.carry {
				var l *loc
				if l, ok = set[o.key]; ok {
					ok = l != nil
					if ok {
						t = *l
					}
				} else {
					d.mu.RLock()
					t, ok = d.index[o.key]
					d.mu.RUnlock()
				}
			}
			if !ok {
				continue // nothing to delete
			}
			v = tombstoneValue(t)
			o.target = t
		}
		start := len(d.buf)
		if o.hasCRC && !o.del {
			d.buf = appendRecordHeadCRC(d.buf, kind, o.key, v, o.crc)
		} else {
			d.buf = appendRecordHead(d.buf, kind, o.key, v)
		}
		o.value = v
		r := pending{op: o, l: loc{pack: p.id, off: off, hlen: uint32(len(d.buf) - start), vlen: uint32(len(v))}, start: start, end: len(d.buf)}
		off += r.l.size()
		recs = append(recs, r)
		switch {
		case !o.del:
			set[o.key] = &recs[len(recs)-1].l
		case !o.carry:
			set[o.key] = nil
		}
	}
	if len(recs) == 0 {
		return nil
	}
	iov := make([][]byte, 0, 2*len(recs))
	for _, r := range recs {
		iov = append(iov, d.buf[r.start:r.end], r.value)
	}
	var err error
	if sync {
		d.preallocate(p, alignUp(off))
		off, err = d.writeAligned(p, iov, alignUp(p.size))
	} else {
		err = pwritevAll(p.f, iov, p.size)
	}
	if err != nil {
		p.truncate()
		return err
	}
	if sync {
		if err := unix.Fdatasync(int(p.f.Fd())); err != nil {
			p.truncate()
			return err
		}
	}
	d.mu.Lock()
	p.size = off
	for _, r := range recs {
		switch {
		case !r.del:
			d.setLocked(r.key, r.l)
		case !r.carry:
			d.deleteLocked(r.key)
		}
		if r.del {
			p.addTomb(r.target.pack, r.l.size())
		}
	}
	d.mu.Unlock()
	return nil
}

const alignment = 4096

func alignUp(n int64) int64 { return (n + alignment - 1) &^ (alignment - 1) }

// directBuffers is the number of 1 MiB aligned buffers of a store's direct
// writes: with AIO, as many writes in flight.
const directBuffers = 4

// preallocStep is how far past an append the newest pack is preallocated
// (at most packTarget).
const preallocStep = 16 << 20

// writeAligned writes iov at off (a multiple of alignment) through
// aligned buffers, zero-padded to a multiple of alignment, with O_DIRECT
// when p has it: the blocks do not go through the page cache, which on
// the project machine cost more CPU than the copy (docs/CONTENT.md). The
// copy into one buffer overlaps the device writing the others: with
// native AIO (aio.go) where the kernel has it, else on another goroutine.
// It returns the end of what it wrote.
func (d *packDir) writeAligned(p *pack, iov [][]byte, off int64) (int64, error) {
	if d.abufs[0] == nil {
		// Outside the Go heap (mmap: page-aligned, as O_DIRECT needs):
		// 4 MiB of live heap would also raise the collector's goal by
		// as much (peak heap of a 1 GiB assembly 47 → 55 MiB).
		const size = 1 << 20
		raw, err := unix.Mmap(-1, 0, len(d.abufs)*size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
		if err != nil {
			raw = make([]byte, len(d.abufs)*size+alignment)
			skip := int(-uintptr(unsafe.Pointer(&raw[0])) & (alignment - 1))
			raw = raw[skip:]
		} else {
			d.mapped = raw
		}
		for i := range d.abufs {
			d.abufs[i] = raw[i*size : (i+1)*size : (i+1)*size]
		}
	}
	if p.w != nil {
		if q := d.queue(); q != nil {
			return d.writeAIO(q, p.w, iov, off)
		}
		return d.writeThreaded(p.w, iov, off)
	}
	return d.writeThreaded(p.f, iov, off)
}

// fillAligned copies iov into buffers from next, in turn, and hands each
// full one, and the last one zero-padded to a multiple of alignment, to
// send with its offset, starting at off. It takes a buffer only when it
// has bytes for it, stops early when send says false, and returns the end
// of what it handed over.
func fillAligned(iov [][]byte, off int64, next func() []byte, send func(b []byte, off int64) bool) int64 {
	var buf []byte
	n := 0
	for _, b := range iov {
		for len(b) > 0 {
			if buf == nil {
				buf, n = next(), 0
			}
			c := copy(buf[n:], b)
			n, b = n+c, b[c:]
			if n == len(buf) {
				if !send(buf, off) {
					return off
				}
				off += int64(n)
				buf = nil
			}
		}
	}
	if buf != nil {
		m := int(alignUp(int64(n)))
		clear(buf[n:m])
		if send(buf[:m], off) {
			off += int64(m)
		}
	}
	return off
}

// writeThreaded writes each buffer with write(2) on another goroutine,
// which keeps its P while the device writes (aio.go says why that costs).
func (d *packDir) writeThreaded(w *os.File, iov [][]byte, off int64) (int64, error) {
	type write struct {
		b   []byte
		off int64
	}
	free := make(chan []byte, len(d.abufs))
	for _, b := range d.abufs {
		free <- b
	}
	todo := make(chan write, len(d.abufs))
	done := make(chan error, 1)
	go func() {
		var err error
		for x := range todo {
			if err == nil {
				_, err = w.WriteAt(x.b, x.off)
			}
			free <- x.b[:cap(x.b)]
		}
		done <- err
	}()
	off = fillAligned(iov, off, func() []byte { return <-free }, func(b []byte, off int64) bool {
		todo <- write{b, off}
		return true
	})
	close(todo)
	return off, <-done
}

// writeAIO writes each buffer with q, len(d.abufs) writes in flight at
// most, and returns once none is.
func (d *packDir) writeAIO(q *aioQueue, w *os.File, iov [][]byte, off int64) (int64, error) {
	var first error
	note := func(err error) {
		if first == nil {
			first = err
		}
	}
	free := make([]int, 0, len(d.abufs)) // slots whose buffer is not in flight
	for i := range d.abufs {
		free = append(free, i)
	}
	// reap waits for a write to complete and returns its slot. If the
	// wait itself failed, the queue is given up (which waits for every
	// write) and slot 0 is free; first holds the error, so the next send
	// stops the append.
	reap := func() int {
		s, err := q.wait()
		note(err)
		if s < 0 {
			d.dropQueue()
			return 0
		}
		return s
	}
	slot := -1 // the slot being filled
	next := func() []byte {
		if len(free) == 0 {
			free = append(free, reap())
		}
		slot, free = free[len(free)-1], free[:len(free)-1]
		return d.abufs[slot]
	}
	off = fillAligned(iov, off, next, func(b []byte, off int64) bool {
		if first == nil && d.aio == q {
			if err := q.submit(slot, w, b, off); err != nil {
				if errors.Is(err, unix.EAGAIN) { // no room in the kernel now: write it here
					_, err = w.WriteAt(b, off)
				}
				note(err)
				free = append(free, slot)
			}
		} else {
			free = append(free, slot)
		}
		return first == nil
	})
	for d.aio == q && q.busy > 0 {
		reap()
	}
	return off, first
}

// queue returns the store's AIO queue, set up at the first call, or nil
// where the kernel has none (direct writes then use write(2)).
func (d *packDir) queue() *aioQueue {
	if d.aio == nil && !d.noAIO {
		q, err := newAIOQueue(len(d.abufs))
		if err != nil {
			d.noAIO = true
			d.log.Debug("pack store: direct writes use write(2)", "why", err)
			return nil
		}
		d.aio = q
	}
	return d.aio
}

// dropQueue gives up the AIO queue after a failure of the queue itself
// (not of a write): closing it waits until nothing is in flight.
func (d *packDir) dropQueue() {
	if d.aio != nil {
		d.aio.close()
		d.aio, d.noAIO = nil, true
	}
}

// preallocate makes p's file at least end long with fallocate (space
// past the data reads as zeros, which the scan at open skips and cuts), so
// that direct writes up to end do not extend the file: ext4 completes an
// extending direct write before io_submit returns. Only with AIO; a
// file system without fallocate gets extending writes.
func (d *packDir) preallocate(p *pack, end int64) {
	if p.w == nil || d.noPrealloc || end <= max(p.alloc, p.size) || d.queue() == nil {
		return
	}
	want := end + min(int64(preallocStep), d.packTarget)
	if err := unix.Fallocate(int(p.w.Fd()), 0, 0, want); err != nil {
		d.noPrealloc = true
		d.log.Debug("pack store: no preallocation", "why", err)
		return
	}
	p.alloc = want
}

// openDirect opens p's O_DIRECT writer, if the file system has them.
func (d *packDir) openDirect(p *pack) {
	if !d.direct {
		return
	}
	if w, err := os.OpenFile(p.f.Name(), os.O_WRONLY|unix.O_DIRECT, 0); err == nil {
		p.w = w
	}
}

// truncate cuts p's file to its valid part: after a failed append, and
// to drop the preallocated space of a pack no longer appended to.
func (p *pack) truncate() error {
	p.alloc = 0
	return p.f.Truncate(p.size)
}

// dropPrealloc truncates p if it has preallocated space.
func (p *pack) dropPrealloc() error {
	if p.alloc == 0 {
		return nil
	}
	return p.truncate()
}

func (p *pack) close() {
	p.f.Close()
	if p.w != nil {
		p.w.Close()
	}
}

// pwritevAll writes iov at off, continuing after short writes.
func pwritevAll(f *os.File, iov [][]byte, off int64) error {
	for len(iov) > 0 {
		batch := iov[:min(len(iov), 1024)] // IOV_MAX
		n, err := unix.Pwritev(int(f.Fd()), batch, off)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		off += int64(n)
		for n > 0 {
			if n < len(iov[0]) {
				iov[0] = iov[0][n:]
				break
			}
			n -= len(iov[0])
			iov = iov[1:]
		}
	}
	return nil
}

// startPack syncs the current pack (tombstones may be unsynced) and
// starts the next one, its name durable before anything is written to it.
func (d *packDir) startPack() error {
	if d.cur != nil {
		if err := d.cur.dropPrealloc(); err != nil {
			return err
		}
		if err := unix.Fdatasync(int(d.cur.f.Fd())); err != nil {
			return err
		}
		if d.cur.w != nil {
			d.cur.w.Close()
			d.cur.w = nil
		}
	}
	id := d.nextID
	f, err := os.OpenFile(filepath.Join(d.dir, packName(id)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := atomicfile.SyncDir(d.dir); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	d.nextID++
	p := &pack{id: id, f: f}
	d.openDirect(p)
	d.mu.Lock()
	d.packs[id] = p
	d.mu.Unlock()
	d.cur = p
	return nil
}

func checkPut(k ds.Key, value []byte) error {
	if n := len(k.String()); n == 0 || n > maxKeyLen {
		return fmt.Errorf("pack datastore: key of %d bytes", n)
	}
	if len(value) > maxValueLen {
		return fmt.Errorf("pack datastore: value of %d bytes exceeds %d", len(value), maxValueLen)
	}
	return nil
}

func (d *packDir) Get(ctx context.Context, k ds.Key) ([]byte, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, errClosed
	}
	l, ok := d.index[k.String()]
	if !ok {
		return nil, ds.ErrNotFound
	}
	v := make([]byte, l.vlen)
	if _, err := d.packs[l.pack].f.ReadAt(v, l.off+int64(l.hlen)); err != nil {
		return nil, fmt.Errorf("pack datastore: read %s: %w", k, err)
	}
	return v, nil
}

func (d *packDir) Has(ctx context.Context, k ds.Key) (bool, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return false, errClosed
	}
	_, ok := d.index[k.String()]
	return ok, nil
}

func (d *packDir) GetSize(ctx context.Context, k ds.Key) (int, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return -1, errClosed
	}
	l, ok := d.index[k.String()]
	if !ok {
		return -1, ds.ErrNotFound
	}
	return int(l.vlen), nil
}

func (d *packDir) Delete(ctx context.Context, k ds.Key) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	return d.appendOps([]op{{key: k.String(), del: true}}, false)
}

// Query lists a snapshot of the keys (reading values unless KeysOnly),
// then applies the query's filters, orders, offset and limit naively.
func (d *packDir) Query(ctx context.Context, q query.Query) (query.Results, error) {
	d.mu.RLock()
	if d.closed {
		d.mu.RUnlock()
		return nil, errClosed
	}
	keys := make([]string, 0, len(d.index))
	for k := range d.index {
		keys = append(keys, k)
	}
	d.mu.RUnlock()
	return naiveQuery(ctx, q, func(yield func(string) bool) error {
		for _, k := range keys {
			if !yield(k) {
				break
			}
		}
		return nil
	}, func(key string) ([]byte, error) { return d.Get(ctx, ds.RawKey(key)) }), nil
}

// Sync makes tombstones durable (puts are synced when written).
func (d *packDir) Sync(ctx context.Context, prefix ds.Key) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.closed {
		return errClosed
	}
	if d.cur == nil {
		return nil
	}
	return unix.Fdatasync(int(d.cur.f.Fd()))
}

func (d *packDir) Close() error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.closed {
		return nil
	}
	var err error
	if d.cur != nil {
		err = cmp.Or(d.cur.dropPrealloc(), unix.Fdatasync(int(d.cur.f.Fd())))
	}
	if d.aio != nil {
		err = cmp.Or(err, d.aio.close())
		d.aio = nil
	}
	if d.mapped != nil { // nothing writes from abufs any more: appends check closed under wmu
		unix.Munmap(d.mapped)
		d.mapped, d.abufs = nil, [directBuffers][]byte{}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, p := range d.packs {
		p.close()
		delete(d.packs, id)
	}
	d.cur, d.closed = nil, true
	return err
}

// Batch returns a batch whose Commit appends its puts and deletes, in
// order, with one write and one fdatasync.
func (d *packDir) Batch(ctx context.Context) (ds.Batch, error) {
	return &packBatch{d: d}, nil
}

type packBatch struct {
	d   *packDir
	ops []op
}

func (b *packBatch) Put(ctx context.Context, k ds.Key, v []byte) error {
	if err := checkPut(k, v); err != nil {
		return err
	}
	b.ops = append(b.ops, op{key: k.String(), value: v})
	return nil
}

// putChecked is Put with the value's CRC-32C computed by the caller
// (copyingBlockstore.PutMany with a checkedBlock).
func (b *packBatch) putChecked(k ds.Key, v []byte, crc uint32) error {
	if err := checkPut(k, v); err != nil {
		return err
	}
	b.ops = append(b.ops, op{key: k.String(), value: v, crc: crc, hasCRC: true})
	return nil
}

func (b *packBatch) Delete(ctx context.Context, k ds.Key) error {
	b.ops = append(b.ops, op{key: k.String(), del: true})
	return nil
}

func (b *packBatch) Commit(ctx context.Context) error {
	b.d.wmu.Lock()
	defer b.d.wmu.Unlock()
	err := b.d.appendOps(b.ops, true)
	b.ops = nil
	return err
}

// compactStats says what compact did.
type compactStats struct {
	Removed, Rewritten int   // packs
	Freed              int64 // bytes
}

// compact removes every pack (but the newest) that holds nothing needed
// (live records, tombstones of records in other packs) and rewrites each
// one whose needed records fill less than half of it:
// they are appended to the newest pack, synced, and the old pack removed.
// Tombstones of a removed pack are carried over while the pack of the
// record they delete still exists. Appends wait while it runs.
func (d *packDir) compact(ctx context.Context) (compactStats, error) {
	var st compactStats
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.closed {
		return st, errClosed
	}
	d.mu.RLock()
	before := d.sizeLocked()
	d.mu.RUnlock()
	// A pass can leave tombstones without a target (their pack removed
	// in the same pass): passes repeat while they find work.
	for range 8 {
		n, err := d.compactPass(ctx, &st)
		if err != nil || n == 0 {
			d.mu.RLock()
			st.Freed = before - d.sizeLocked()
			d.mu.RUnlock()
			if err == nil && st.Removed+st.Rewritten > 0 {
				err = atomicfile.SyncDir(d.dir)
			}
			return st, err
		}
	}
	return st, nil
}

// compactPass removes or rewrites the packs that need it now and returns
// how many it did.
func (d *packDir) compactPass(ctx context.Context, st *compactStats) (int, error) {
	d.mu.RLock()
	var victims []*pack
	for _, p := range d.packs {
		if p != d.cur && (p.size == 0 || d.needed(p)*2 < p.size) {
			victims = append(victims, p)
		}
	}
	d.mu.RUnlock()
	slices.SortFunc(victims, func(a, b *pack) int { return cmp.Compare(a.id, b.id) })
	gone := map[uint32]bool{}
	for _, p := range victims {
		gone[p.id] = true
	}
	for _, p := range victims {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if p.live > 0 {
			st.Rewritten++
		} else {
			st.Removed++
		}
		if err := d.rewrite(p, gone); err != nil {
			return 0, fmt.Errorf("compact %s: %w", packName(p.id), err)
		}
		d.mu.Lock()
		delete(d.packs, p.id)
		d.mu.Unlock()
		p.close()
		if err := os.Remove(p.f.Name()); err != nil {
			return 0, err
		}
	}
	return len(victims), nil
}

// sizeLocked is the bytes of all packs (d.mu held).
func (d *packDir) sizeLocked() int64 {
	var n int64
	for _, p := range d.packs {
		n += p.size
	}
	return n
}

// rewrite appends p's live records and its still needed tombstones to the
// newest pack, synced, in appends of at most 16 MiB. gone lists the packs
// this compaction removes (their tombstones' targets need none).
func (d *packDir) rewrite(p *pack, gone map[uint32]bool) error {
	var ops []op
	var bytes int64
	flush := func() error {
		err := d.appendOps(ops, true)
		ops, bytes = ops[:0], 0
		return err
	}
	var readErr error
	_, err := scanPack(p.f, p.size, false, func(r record) {
		if readErr != nil {
			return
		}
		switch r.kind {
		case recTombstone:
			d.mu.RLock()
			_, exists := d.packs[r.target.pack]
			d.mu.RUnlock()
			if exists && !gone[r.target.pack] {
				ops = append(ops, op{key: r.key, del: true, carry: true, target: r.target})
			}
		case recPut:
			d.mu.RLock()
			l, ok := d.index[r.key]
			d.mu.RUnlock()
			if !ok || l.pack != p.id || l.off != r.off {
				return // dead
			}
			v := make([]byte, r.vlen)
			if _, readErr = p.f.ReadAt(v, r.off+int64(r.hlen)); readErr != nil {
				return
			}
			ops = append(ops, op{key: r.key, value: v})
			bytes += int64(r.vlen)
			if bytes >= 16<<20 {
				readErr = flush()
			}
		}
	})
	if err == nil {
		err = readErr
	}
	if err == nil {
		err = flush()
	}
	return err
}

// naiveQuery answers q from keys (each given once) and get (a key deleted
// meanwhile answers ds.ErrNotFound and is skipped): it lists every key,
// with its value unless KeysOnly, then applies the query's filters, orders,
// offset and limit naively.
func naiveQuery(ctx context.Context, q query.Query, keys func(yield func(string) bool) error, get func(string) ([]byte, error)) query.Results {
	raw := q
	raw.Filters, raw.Orders, raw.Offset, raw.Limit, raw.Prefix = nil, nil, 0, 0, ""
	res := query.ResultsWithContext(raw, func(qctx context.Context, out chan<- query.Result) {
		err := keys(func(k string) bool {
			ent := query.Entry{Key: k}
			if !q.KeysOnly {
				v, err := get(k)
				if errors.Is(err, ds.ErrNotFound) {
					return true
				}
				if err != nil {
					out <- query.Result{Error: err}
					return false
				}
				ent.Value, ent.Size = v, len(v)
			}
			select {
			case out <- query.Result{Entry: ent}:
				return true
			case <-qctx.Done():
			case <-ctx.Done():
			}
			return false
		})
		if err != nil {
			out <- query.Result{Error: err}
		}
	})
	return query.NaiveQueryApply(q, res)
}
