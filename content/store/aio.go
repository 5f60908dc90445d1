package store

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// aioQueue writes aligned buffers to O_DIRECT files with Linux native AIO
// (io_submit), up to its depth at once, and learns of completions through
// an eventfd that Go's netpoller waits on.
//
// Why not write(2): a goroutine blocked in a system call keeps its P
// until sysmon takes it back, and sysmon leaves it (up to 10 ms) while
// that P's run queue is empty and another P is spinning or idle
// (runtime.retake), which a pipeline handing work over channels often
// is: a 1 MiB direct append
// took a core away from publishing's workers for the ≈1 ms the device
// needed (0.48 s of 0.6 s of writes over two 256 MiB publishes: 1.55 of
// 2 cores used; docs/CONTENT.md, session 8). A submitted write does not
// block, and a goroutine waiting on the eventfd is parked without a P.
// More than one write in flight also keeps the device busy while the
// next buffer is filled.
//
// ext4 completes a direct write that extends the file before io_submit
// returns; the pack store preallocates (fallocate) so that its appends
// do not extend the file.
//
// An aioQueue is not safe for concurrent use: the pack store uses it
// under its write lock.
type aioQueue struct {
	ctx    uintptr // aio_context_t
	efd    *os.File
	efdNum int // efd's descriptor (efd.Fd would make it blocking)
	cbs    []iocb
	bufs   [][]byte // the buffer of each slot in flight, kept reachable until it completes
	events []ioEvent
	done   []aioDone // reaped, not yet returned by wait
	busy   int       // slots submitted and not yet returned by wait
}

// iocb and ioEvent are Linux's struct iocb and struct io_event on
// 64-bit little-endian machines (aio_key before aio_rw_flags).
type iocb struct {
	data   uint64 // the slot
	_      uint32 // aio_key
	_      uint32 // aio_rw_flags
	opcode uint16
	_      int16 // aio_reqprio
	fildes uint32
	buf    uint64
	nbytes uint64
	offset int64
	_      uint64 // aio_reserved2
	flags  uint32
	resfd  uint32
}

type ioEvent struct {
	data, obj uint64
	res, res2 int64
}

type aioDone struct {
	slot int
	err  error
}

const (
	iocbCmdPwrite = 1
	iocbFlagResfd = 1 << 0
)

var _ [64 - unsafe.Sizeof(iocb{})]struct{} // the kernel's layout: 64 bytes
var _ [32 - unsafe.Sizeof(ioEvent{})]struct{}

// errAIOUnavailable: this kernel or machine has no native AIO to give.
var errAIOUnavailable = errors.New("native AIO unavailable")

// newAIOQueue sets up a queue of depth slots. Its error means the caller
// should write with write(2) instead (a kernel without CONFIG_AIO, a
// seccomp filter, or fs.aio-max-nr reached).
func newAIOQueue(depth int) (*aioQueue, error) {
	if !littleEndian64 {
		return nil, errAIOUnavailable
	}
	var ctx uintptr
	if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, uintptr(depth), uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		return nil, fmt.Errorf("%w: io_setup: %w", errAIOUnavailable, e)
	}
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Syscall(unix.SYS_IO_DESTROY, ctx, 0, 0)
		return nil, fmt.Errorf("%w: eventfd: %w", errAIOUnavailable, err)
	}
	return &aioQueue{
		ctx:    ctx,
		efd:    os.NewFile(uintptr(fd), "aio-eventfd"), // non-blocking: reads wait in the netpoller
		efdNum: fd,
		cbs:    make([]iocb, depth),
		bufs:   make([][]byte, depth),
		events: make([]ioEvent, depth),
	}, nil
}

// littleEndian64 is whether iocb's layout above is this machine's.
var littleEndian64 = func() bool {
	x := uint16(1)
	return unsafe.Sizeof(uintptr(0)) == 8 && *(*byte)(unsafe.Pointer(&x)) == 1
}()

// submit starts writing b (aligned, as O_DIRECT needs) at off of f in
// slot, which must be free: never submitted, or returned by wait since.
// An error wrapping unix.EAGAIN means the kernel had no room to queue it
// (the slot stays free): the caller may write b itself.
func (q *aioQueue) submit(slot int, f *os.File, b []byte, off int64) error {
	if len(b) == 0 {
		return errors.New("aio: empty write")
	}
	q.cbs[slot] = iocb{
		data:   uint64(slot),
		opcode: iocbCmdPwrite,
		fildes: uint32(f.Fd()),
		buf:    uint64(uintptr(unsafe.Pointer(&b[0]))),
		nbytes: uint64(len(b)),
		offset: off,
		flags:  iocbFlagResfd,
		resfd:  uint32(q.efdNum),
	}
	q.bufs[slot] = b
	cb := &q.cbs[slot]
	for {
		n, _, e := unix.Syscall(unix.SYS_IO_SUBMIT, q.ctx, 1, uintptr(unsafe.Pointer(&cb)))
		switch {
		case e == unix.EINTR:
			continue
		case e != 0:
			q.bufs[slot] = nil
			return fmt.Errorf("io_submit: %w", e)
		case n != 1:
			q.bufs[slot] = nil
			return errors.New("io_submit: write not queued")
		}
		q.busy++
		return nil
	}
}

// wait returns a slot whose write has completed, with the write's error
// (a short write is one); it blocks, without holding a P, until one has.
// Without writes in flight it returns -1.
func (q *aioQueue) wait() (int, error) {
	if q.busy == 0 {
		return -1, nil
	}
	var count [8]byte
	for len(q.done) == 0 {
		// Reap first, then wait for the eventfd: a completion that
		// comes between the two raises the counter, so the read returns.
		n, _, e := unix.Syscall6(unix.SYS_IO_GETEVENTS, q.ctx, 0, uintptr(len(q.events)),
			uintptr(unsafe.Pointer(&q.events[0])), uintptr(unsafe.Pointer(&unix.Timespec{})), 0)
		switch {
		case e == unix.EINTR:
			n = 0
		case e != 0:
			return -1, fmt.Errorf("io_getevents: %w", e)
		}
		for _, ev := range q.events[:n] {
			d := aioDone{slot: int(ev.data)}
			want := int64(len(q.bufs[d.slot]))
			switch {
			case ev.res < 0:
				d.err = fmt.Errorf("direct write: %w", unix.Errno(-ev.res))
			case ev.res != want:
				d.err = fmt.Errorf("direct write: %d of %d bytes written", ev.res, want)
			}
			q.bufs[d.slot] = nil
			q.done = append(q.done, d)
		}
		if len(q.done) > 0 {
			break
		}
		if _, err := q.efd.Read(count[:]); err != nil {
			return -1, fmt.Errorf("aio eventfd: %w", err)
		}
	}
	d := q.done[0]
	q.done = q.done[1:]
	q.busy--
	return d.slot, d.err
}

// close waits for writes in flight and releases the queue.
func (q *aioQueue) close() error {
	var first error
	for q.busy > 0 {
		slot, err := q.wait()
		if err != nil && first == nil {
			first = err
		}
		if slot < 0 {
			break // the wait itself failed: io_destroy waits for the rest
		}
	}
	unix.Syscall(unix.SYS_IO_DESTROY, q.ctx, 0, 0) // returns once nothing is in flight
	q.efd.Close()
	return first
}
