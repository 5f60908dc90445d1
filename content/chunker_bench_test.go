package content

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	chunker "github.com/ipfs/boxo/chunker"
)

// BenchmarkChunker is the measurement behind the chunker choice
// (docs/CONTENT.md): for each candidate, chunking throughput relative to a
// SHA-256 pass over the same bytes, the mean chunk size, and the share of
// chunk bytes reused by the delta scenario of TestDelta.
func BenchmarkChunker(b *testing.B) {
	size := 64 << 20
	if benchQuick() {
		size = 16 << 20
	}
	old, next := deltaInput(rand.New(rand.NewPCG(11, 12)), size)
	cands := []struct {
		name string
		new  func(io.Reader) chunker.Splitter
	}{
		{"buzhash-128k-256k-512k", func(r io.Reader) chunker.Splitter { return chunker.NewBuzhash(r) }},
		{"rabin-128k-256k-512k", func(r io.Reader) chunker.Splitter { return chunker.NewRabinMinMax(r, 128<<10, 256<<10, 512<<10) }},
		{"rabin-64k-128k-256k", func(r io.Reader) chunker.Splitter { return chunker.NewRabinMinMax(r, 64<<10, 128<<10, 256<<10) }},
		{"rabin-256k-512k-1m", func(r io.Reader) chunker.Splitter { return chunker.NewRabinMinMax(r, 256<<10, 512<<10, 1<<20) }},
	}
	for _, c := range cands {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(size))
			var chunkT, shaT time.Duration
			var n int
			for b.Loop() {
				t0 := time.Now()
				sum := sha256.Sum256(old)
				shaT += time.Since(t0)
				_ = sum
				t0 = time.Now()
				n = len(splitAll(c.new, old))
				chunkT += time.Since(t0)
			}
			hashes := map[[32]byte]bool{}
			for _, ch := range splitAll(c.new, old) {
				hashes[sha256.Sum256(ch)] = true
			}
			var total, reused int
			for _, ch := range splitAll(c.new, next) {
				total += len(ch)
				if hashes[sha256.Sum256(ch)] {
					reused += len(ch)
				}
			}
			b.ReportMetric(float64(shaT)/float64(chunkT), "x_sha256")
			b.ReportMetric(float64(size)/float64(n)/1024, "KiB/chunk")
			b.ReportMetric(100*float64(reused)/float64(total), "%reused")
		})
	}
}

func splitAll(mk func(io.Reader) chunker.Splitter, data []byte) [][]byte {
	sp := mk(bytes.NewReader(data))
	var out [][]byte
	for {
		c, err := sp.NextBytes()
		if err == io.EOF {
			return out
		}
		if err != nil {
			panic(fmt.Sprint(err))
		}
		out = append(out, c)
	}
}
