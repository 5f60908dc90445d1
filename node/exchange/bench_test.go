package exchange

import (
	"context"
	"crypto/rand"
	"io"
	"os"
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
// and stored) and as a plain libp2p stream copy between the same hosts.
// It reports both rates and their ratio (the exchange's CPU efficiency).
func BenchmarkExchangeVsStream(b *testing.B) {
	size := 64 << 20
	if os.Getenv("BENCH_QUICK") != "" {
		size = 16 << 20
	}
	const blockSize = 256 << 10
	var exSecs, rawSecs float64
	for range b.N {
		b.StopTimer()
		src, dst := newBenchPeer(b), newBenchPeer(b)
		var cids []cid.Cid
		for i := 0; i < size/blockSize; i++ {
			data := make([]byte, blockSize)
			rand.Read(data)
			blk, _ := blocks.NewBlockWithCid(data, content.RawCID(data))
			src.bs.Put(context.Background(), blk)
			cids = append(cids, blk.Cid())
		}
		if err := dst.h.Connect(context.Background(), peer.AddrInfo{ID: src.h.ID(), Addrs: src.h.Addrs()}); err != nil {
			b.Fatal(err)
		}
		// Raw stream: src writes size bytes, dst reads them.
		src.h.SetStreamHandler("/bench/raw", func(s network.Stream) {
			buf := make([]byte, blockSize)
			for sent := 0; sent < size; sent += blockSize {
				if _, err := s.Write(buf); err != nil {
					break
				}
			}
			s.Close()
		})
		b.StartTimer()
		start := time.Now()
		s, err := dst.h.NewStream(context.Background(), src.h.ID(), "/bench/raw")
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, s)
		if err != nil || n != int64(size) {
			b.Fatalf("raw copy: %d bytes, %v", n, err)
		}
		rawSecs += time.Since(start).Seconds()
		start = time.Now()
		got := 0
		for range dst.ex.GetBlocks(context.Background(), cids) {
			got++
		}
		if got != len(cids) {
			b.Fatalf("exchange delivered %d of %d blocks", got, len(cids))
		}
		exSecs += time.Since(start).Seconds()
		b.StopTimer()
		src.close()
		dst.close()
		b.StartTimer()
	}
	mb := float64(size) * float64(b.N) / 1e6
	b.ReportMetric(mb/exSecs, "exchange-MB/s")
	b.ReportMetric(mb/rawSecs, "stream-MB/s")
	b.ReportMetric(rawSecs/exSecs, "x-stream")
}

type benchPeer struct {
	h     *host.Host
	bs    blockstore.Blockstore
	ex    *Exchange
	close func()
}

func newBenchPeer(b *testing.B) *benchPeer {
	h, err := host.New(context.Background(), host.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		b.Fatal(err)
	}
	bs := newStore()
	ex := New(context.Background(), Config{Host: h, Blockstore: bs})
	return &benchPeer{h: h, bs: bs, ex: ex, close: func() { ex.Close(); h.Close() }}
}
