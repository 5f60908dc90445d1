package content

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	chunker "github.com/ipfs/boxo/chunker"
)

// TestSplitterMatchesBoxo checks that splitter cuts exactly where boxo's
// buzhash chunker does, whatever the input and however the reader splits
// its reads.
func TestSplitterMatchesBoxo(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	inputs := map[string][]byte{
		"empty":       nil,
		"one byte":    {7},
		"below min":   randBytes(r, MinChunkSize-1),
		"min":         randBytes(r, MinChunkSize),
		"min+32":      randBytes(r, MinChunkSize+32),
		"max":         randBytes(r, MaxChunkSize),
		"max+1":       randBytes(r, MaxChunkSize+1),
		"zeros":       make([]byte, 3*MaxChunkSize+12345),
		"random 9MiB": randBytes(r, 9<<20+777),
	}
	// Low-entropy data cuts often right at the minimum.
	rep := bytes.Repeat([]byte("meshota "), 1<<18)
	inputs["repeated"] = rep
	mixed := append(append(randBytes(r, 700_000), make([]byte, 600_000)...), randBytes(r, 5<<20)...)
	inputs["mixed"] = mixed
	for name, data := range inputs {
		want := boxoCuts(t, data)
		for _, rd := range []struct {
			name string
			r    func([]byte) io.Reader
		}{
			{"whole", func(b []byte) io.Reader { return bytes.NewReader(b) }},
			{"half", func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
			{"data+eof", func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
		} {
			sp := newSplitter(rd.r(data))
			var got []int
			buf := make([]byte, MaxChunkSize)
			off := 0
			for {
				c, err := sp.next(buf)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s/%s: %v", name, rd.name, err)
				}
				if !bytes.Equal(c, data[off:off+len(c)]) {
					t.Fatalf("%s/%s: chunk at %d has the wrong bytes", name, rd.name, off)
				}
				off += len(c)
				got = append(got, len(c))
			}
			if !equalInts(got, want) {
				t.Errorf("%s/%s: cuts %v, boxo %v", name, rd.name, got, want)
			}
		}
	}
}

// TestSplitterSharedChunks holds every chunk nextShared hands out, across
// two streams (reset in between, as publish does between files), and
// checks them all at the end: a read-ahead buffer must not be refilled
// while a chunk still points into it. Then it releases them and checks
// that the buffers are reused rather than allocated anew.
func TestSplitterSharedChunks(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	streams := [][]byte{randBytes(r, 3*splitterBuffer+12345), randBytes(r, splitterBuffer/2)}
	sp := newSplitter(nil)
	type held struct {
		data, want []byte
		buf        *readAhead
	}
	var all []held
	bufs := map[*readAhead]bool{}
	for _, s := range streams {
		sp.reset(iotest.HalfReader(bytes.NewReader(s)))
		off := 0
		for {
			c, buf, err := sp.nextShared()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if cap(c) != len(c) {
				t.Fatalf("chunk at %d: capacity %d beyond its %d bytes (an append would write into the read-ahead)", off, cap(c), len(c))
			}
			all = append(all, held{c, s[off : off+len(c)], buf})
			bufs[buf] = true
			off += len(c)
		}
		if off != len(s) {
			t.Fatalf("chunks cover %d of %d bytes", off, len(s))
		}
	}
	for i, h := range all {
		if !bytes.Equal(h.data, h.want) {
			t.Fatalf("chunk %d was overwritten while held", i)
		}
	}
	if len(bufs) < 3 {
		t.Fatalf("%d read-ahead buffers for %d held chunks", len(bufs), len(all))
	}
	for _, h := range all {
		h.buf.release()
	}
	// Released buffers come back: streaming again allocates none.
	before := len(sp.free)
	if before == 0 {
		t.Fatal("no released buffer was kept for reuse")
	}
	sp.reset(bytes.NewReader(streams[0]))
	for {
		_, buf, err := sp.nextShared()
		if err != nil {
			break
		}
		if !bufs[buf] {
			t.Fatal("a new buffer was allocated while released ones were free")
		}
		buf.release()
	}
}

// TestSplitterSmallStreams: many small streams in a row (a tree of small
// files) share the read-ahead buffers, even while every chunk is still
// held, and each chunk keeps its bytes.
func TestSplitterSmallStreams(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	sp := newSplitter(nil)
	bufs := map[*readAhead]bool{}
	type held struct{ data, want []byte }
	var all []held
	total := 0
	for i := range 3000 {
		s := randBytes(r, 1+i%3000)
		total += len(s)
		sp.reset(bytes.NewReader(s))
		c, buf, err := sp.nextShared()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := sp.nextShared(); err != io.EOF {
			t.Fatalf("stream %d: %v after its one chunk", i, err)
		}
		bufs[buf] = true
		all = append(all, held{c, s})
	}
	for i, h := range all {
		if !bytes.Equal(h.data, h.want) {
			t.Fatalf("chunk %d was overwritten while held", i)
		}
	}
	if max := total/(splitterBuffer-MaxChunkSize) + 1; len(bufs) > max {
		t.Fatalf("%d read-ahead buffers for %d bytes in %d streams (at most %d)", len(bufs), total, len(all), max)
	}
}

func boxoCuts(t *testing.T, data []byte) []int {
	sp := chunker.NewBuzhash(bytes.NewReader(data))
	var cuts []int
	for {
		c, err := sp.NextBytes()
		if err == io.EOF {
			return cuts
		}
		if err != nil {
			t.Fatal(err)
		}
		cuts = append(cuts, len(c))
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkSplitter compares splitter with boxo's buzhash on 64 MiB.
func BenchmarkSplitter(b *testing.B) {
	data := randBytes(rand.New(rand.NewPCG(1, 2)), 64<<20)
	b.Run("boxo", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			sp := chunker.NewBuzhash(bytes.NewReader(data))
			for {
				if _, err := sp.NextBytes(); err != nil {
					break
				}
			}
		}
	})
	b.Run("splitter", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		buf := make([]byte, MaxChunkSize)
		sp := newSplitter(nil)
		for b.Loop() {
			sp.reset(bytes.NewReader(data))
			for {
				if _, err := sp.next(buf); err != nil {
					break
				}
			}
		}
	})
}
