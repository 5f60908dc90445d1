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
