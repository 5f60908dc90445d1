package content

import (
	"errors"
	"io"
	"math/bits"
	"sync/atomic"
)

// splitter cuts a stream into chunks exactly where boxo's buzhash chunker
// (chunker.NewBuzhash, the format's chunker: see docs/CONTENT.md) cuts it,
// but faster: it reads ahead in large pieces into reused buffers, hands out
// each chunk as a slice of the read-ahead buffer (no copy: the buffer is
// reused once every chunk cut from it is released), and its rolling hash
// loop keeps a short dependency chain. TestSplitterMatchesBoxo compares the
// two on random and edge-case inputs; the golden vectors pin the result.
//
// boxo's rule: with up to MaxChunkSize bytes available at the current
// position, fewer than MinChunkSize end the stream as one chunk; otherwise
// the chunk ends at the first p in [MinChunkSize, avail) whose preceding 32
// bytes hash (buzhash) to a value with the low 17 bits clear, or at avail.
type splitter struct {
	r        io.Reader
	cur      *readAhead // never nil; the splitter holds one reference
	off, end int        // cur.b[off:end] is read but not yet returned
	eof      bool
	err      error
	free     chan *readAhead // released buffers, reused before allocating
}

// readAhead is one read-ahead buffer shared by the splitter and the chunks
// cut from it. Publishing used to copy every chunk out of a single buffer
// (≈ 4 % of its CPU on a 256 MiB release, on the one serial goroutine);
// now only the unread tail moves when a buffer runs out, at most
// MaxChunkSize per splitterBuffer.
type readAhead struct {
	b    []byte
	refs atomic.Int32
	free chan *readAhead
}

// release drops one reference; the last one gives the buffer back to its
// splitter (or to the garbage collector when the splitter has enough).
func (r *readAhead) release() {
	if r.refs.Add(-1) == 0 {
		select {
		case r.free <- r:
		default:
		}
	}
}

// splitterBuffer is the size of a read-ahead buffer: a switch to the next
// buffer moves less than MaxChunkSize bytes per splitterBuffer-MaxChunkSize
// read.
const splitterBuffer = 4 << 20

const buzMask = 1<<17 - 1

func newSplitter(r io.Reader) *splitter {
	s := &splitter{r: r, free: make(chan *readAhead, 2)}
	s.cur = s.newReadAhead()
	return s
}

// newReadAhead returns a buffer no chunk refers to, with one reference
// (the splitter's).
func (s *splitter) newReadAhead() *readAhead {
	var r *readAhead
	select {
	case r = <-s.free:
	default:
		r = &readAhead{b: make([]byte, splitterBuffer), free: s.free}
	}
	r.refs.Store(1)
	return r
}

// reset makes s read r from the start. Chunks of the previous stream may
// still point into the buffer, so the new stream goes on after them in
// the same buffer (a tree of small files shares a few buffers instead of
// taking one each); anything the previous stream left unread is dropped.
func (s *splitter) reset(r io.Reader) {
	s.r, s.off, s.eof, s.err = r, s.end, false, nil
}

// fill reads until MaxChunkSize bytes are available or the stream ends.
// Reads only write past end, where no chunk points.
func (s *splitter) fill() error {
	if s.end-s.off >= MaxChunkSize || s.eof {
		return nil
	}
	if len(s.cur.b)-s.off < MaxChunkSize {
		next := s.newReadAhead()
		s.end = copy(next.b, s.cur.b[s.off:s.end])
		s.off = 0
		s.cur.release()
		s.cur = next
	}
	for s.end-s.off < MaxChunkSize && !s.eof {
		n, err := s.r.Read(s.cur.b[s.end:])
		s.end += n
		if errors.Is(err, io.EOF) {
			s.eof = true
		} else if err != nil {
			return err
		}
	}
	return nil
}

// nextShared returns the next chunk as a slice of a read-ahead buffer and
// that buffer, with a reference the caller must release once done with
// the chunk (its bytes are overwritten after that); io.EOF after the last
// chunk.
func (s *splitter) nextShared() ([]byte, *readAhead, error) {
	if s.err != nil {
		return nil, nil, s.err
	}
	if err := s.fill(); err != nil {
		s.err = err
		return nil, nil, err
	}
	avail := min(s.end-s.off, MaxChunkSize)
	if avail == 0 {
		s.err = io.EOF
		return nil, nil, io.EOF
	}
	n := avail
	if avail >= MinChunkSize {
		n = cutPoint(s.cur.b[s.off : s.off+avail])
	}
	out := s.cur.b[s.off : s.off+n : s.off+n]
	s.off += n
	s.cur.refs.Add(1)
	return out, s.cur, nil
}

// next copies the next chunk into dst (which needs room for MaxChunkSize
// bytes) and returns it; io.EOF after the last chunk.
func (s *splitter) next(dst []byte) ([]byte, error) {
	c, r, err := s.nextShared()
	if err != nil {
		return nil, err
	}
	out := append(dst[:0], c...)
	r.release()
	return out, nil
}

// NextBytes returns the next chunk in a new slice; io.EOF at the end.
func (s *splitter) NextBytes() ([]byte, error) {
	return s.next(make([]byte, 0, MaxChunkSize))
}

// cutPoint returns the length of the chunk at the start of b, with
// MinChunkSize <= len(b) <= MaxChunkSize.
func cutPoint(b []byte) int {
	var h uint32
	for _, c := range b[MinChunkSize-32 : MinChunkSize] {
		h = bits.RotateLeft32(h, 1) ^ bytehash[c]
	}
	// Position i of out is checked with h covering out[i:i+32]; in[i] is
	// the byte that enters as out[i] leaves.
	out := b[MinChunkSize-32 : len(b)-32]
	in := b[MinChunkSize:]
	in = in[:len(out)]
	i := 0
	for ; i+4 <= len(out); i += 4 {
		// Four steps; the table lookups are off the h dependency chain.
		o, n := out[i:i+4:i+4], in[i:i+4:i+4]
		x0 := bytehash[o[0]] ^ bytehash[n[0]]
		x1 := bytehash[o[1]] ^ bytehash[n[1]]
		x2 := bytehash[o[2]] ^ bytehash[n[2]]
		x3 := bytehash[o[3]] ^ bytehash[n[3]]
		h1 := bits.RotateLeft32(h, 1) ^ x0
		h2 := bits.RotateLeft32(h1, 1) ^ x1
		h3 := bits.RotateLeft32(h2, 1) ^ x2
		if h&buzMask == 0 || h1&buzMask == 0 || h2&buzMask == 0 || h3&buzMask == 0 {
			break
		}
		h = bits.RotateLeft32(h3, 1) ^ x3
	}
	for ; i < len(out); i++ {
		if h&buzMask == 0 {
			return MinChunkSize + i
		}
		h = bits.RotateLeft32(h, 1) ^ (bytehash[out[i]] ^ bytehash[in[i]])
	}
	return len(b)
}
