package exchange

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ipfs/boxo/blockstore"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/node/host"
)

// BenchmarkExchangeVsStream fetches the same bytes over loopback TCP twice
// in each iteration: through the exchange (bitswap + blockservice, hashed
// and stored) in one request for every block, and as a plain libp2p stream
// copy between the same hosts. It reports both rates and their ratio (the
// exchange's efficiency), the process CPU seconds of each phase (both
// hosts: the ratio's cause, which the machine's load moves less than wall
// time) and the time to the first block (the exchange's start-up).
func BenchmarkExchangeVsStream(b *testing.B) {
	benchExchangeVsStream(b, randomBlocks(fetchInOneRequest))
}

// BenchmarkExchangeSlidingVsStream is the same fetch made the way agents
// make it: content.Assemble asks for the first two windows of 8 chunks in
// a request each, then, as its in-order writer takes each chunk, for the
// chunk 2 × 8 further on, alone; every request is a GetBlocks call and so
// a bitswap session of its own.
func BenchmarkExchangeSlidingVsStream(b *testing.B) {
	benchExchangeVsStream(b, randomBlocks(fetchSliding(8)))
}

// fetcher fetches cids through ex, calling got once per block delivered.
type fetcher func(ex *Exchange, cids []cid.Cid, got func())

func fetchInOneRequest(ex *Exchange, cids []cid.Cid, got func()) {
	for range ex.GetBlocks(context.Background(), cids) {
		got()
	}
}

// fetchSliding asks as content.Assemble's feeder does with a window of
// window chunks: it keeps 2 × window + 1 chunks asked for beyond the
// in-order prefix of those delivered, the first 2 × window in requests of
// window, each later one in a request of its own.
func fetchSliding(window int) fetcher {
	return func(ex *Exchange, cids []cid.Cid, got func()) {
		at := make(map[cid.Cid]int, len(cids))
		for i, c := range cids {
			at[c] = i
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		arrived := make([]bool, len(cids))
		written := 0 // chunks delivered in order: the writer's position
		var ask func(from, to int)
		ask = func(from, to int) {
			to = min(to, len(cids))
			if from >= to {
				return
			}
			wg.Go(func() {
				for blk := range ex.GetBlocks(context.Background(), cids[from:to]) {
					mu.Lock()
					got()
					arrived[at[blk.Cid()]] = true
					for written < len(cids) && arrived[written] {
						written++
						next := written + 2*window
						ask(next, next+1)
					}
					mu.Unlock()
				}
			})
		}
		mu.Lock()
		ask(0, window)
		ask(window, 2*window)
		ask(2*window, 2*window+1)
		mu.Unlock()
		wg.Wait()
	}
}

// benchCase fills the seed's store with size bytes (outside the timer) and
// returns the fetch to time: it calls got once per block delivered and
// fails b unless it got everything.
type benchCase func(b *testing.B, seed blockstore.Blockstore, size int) func(dst *benchPeer, got func())

// randomBlocks fills the seed with random 256 KiB blocks and fetches them
// all with fetch.
func randomBlocks(fetch fetcher) benchCase {
	return func(b *testing.B, seed blockstore.Blockstore, size int) func(*benchPeer, func()) {
		var cids []cid.Cid
		for i := 0; i < size/benchBlockSize; i++ {
			data := make([]byte, benchBlockSize)
			rand.Read(data)
			blk, _ := blocks.NewBlockWithCid(data, content.RawCID(data))
			seed.Put(context.Background(), blk)
			cids = append(cids, blk.Cid())
		}
		return func(dst *benchPeer, got func()) {
			n := 0
			fetch(dst.ex, cids, func() { n++; got() })
			if n != len(cids) {
				b.Fatalf("exchange delivered %d of %d blocks", n, len(cids))
			}
		}
	}
}

const benchBlockSize = 256 << 10

func benchExchangeVsStream(b *testing.B, fill benchCase) {
	benchVsStream(b, fill, func(b *testing.B) (blockstore.Blockstore, func()) { return newStore(), func() {} })
}

// benchVsStream runs fill's fetch into a peer whose store dstStore makes
// against a raw stream copy of the same size, and reports the figures.
func benchVsStream(b *testing.B, fill benchCase, dstStore func(*testing.B) (blockstore.Blockstore, func())) {
	size := 64 << 20
	if os.Getenv("BENCH_QUICK") != "" {
		size = 16 << 20
	}
	var exSecs, rawSecs, firstSecs float64
	var exCPU, rawCPU time.Duration
	for range b.N {
		b.StopTimer()
		dbs, closeStore := dstStore(b)
		src, dst := newBenchPeer(b, newStore(), seedRole), newBenchPeer(b, dbs, nil)
		fetch := fill(b, src.bs, size)
		if err := dst.h.Connect(context.Background(), peer.AddrInfo{ID: src.h.ID(), Addrs: src.h.Addrs()}); err != nil {
			b.Fatal(err)
		}
		// Raw stream: src writes size bytes, dst reads them.
		src.h.SetStreamHandler("/bench/raw", func(s network.Stream) {
			buf := make([]byte, benchBlockSize)
			for sent := 0; sent < size; sent += benchBlockSize {
				if _, err := s.Write(buf); err != nil {
					break
				}
			}
			s.Close()
		})
		b.StartTimer()
		start, cpu := time.Now(), processCPU(b)
		s, err := dst.h.NewStream(context.Background(), src.h.ID(), "/bench/raw")
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, s)
		if err != nil || n != int64(size) {
			b.Fatalf("raw copy: %d bytes, %v", n, err)
		}
		rawSecs += time.Since(start).Seconds()
		rawCPU += processCPU(b) - cpu
		start, cpu = time.Now(), processCPU(b)
		first := true
		fetch(dst, func() {
			if first {
				firstSecs += time.Since(start).Seconds()
				first = false
			}
		})
		exSecs += time.Since(start).Seconds()
		exCPU += processCPU(b) - cpu
		b.StopTimer()
		src.close()
		dst.close()
		closeStore()
		b.StartTimer()
	}
	mb := float64(size) * float64(b.N) / 1e6
	b.ReportMetric(mb/exSecs, "exchange-MB/s")
	b.ReportMetric(mb/rawSecs, "stream-MB/s")
	b.ReportMetric(rawSecs/exSecs, "x-stream")
	b.ReportMetric(exCPU.Seconds()/float64(b.N), "exchange-cpu-s/op")
	b.ReportMetric(rawCPU.Seconds()/float64(b.N), "stream-cpu-s/op")
	b.ReportMetric(rawCPU.Seconds()/exCPU.Seconds(), "x-stream-cpu")
	b.ReportMetric(firstSecs*1000/float64(b.N), "first-block-ms")
}

// processCPU is the process's user and system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type benchPeer struct {
	h     *host.Host
	bs    blockstore.Blockstore
	ex    *Exchange
	close func()
}

// seedRole configures a benchmark's source as `meshota seed` runs: the
// fetch of figures 3a and 3b is a device's from a seed.
func seedRole(c *Config) { c.OncePerSite = 30 * time.Second }

func newBenchPeer(b *testing.B, bs blockstore.Blockstore, role func(*Config)) *benchPeer {
	h, err := host.New(context.Background(), host.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{Host: h, Blockstore: bs}
	if role != nil {
		role(&cfg)
	}
	ex := New(context.Background(), cfg)
	return &benchPeer{h: h, bs: bs, ex: ex, close: func() { ex.Close(); h.Close() }}
}
