package exchange

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/node/host"
)

func newStore() blockstore.Blockstore {
	return blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
}

// lyingStore answers every Get with bytes that do not match the CID.
type lyingStore struct{ blockstore.Blockstore }

func (l lyingStore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	b, err := l.Blockstore.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	bad := append([]byte("evil"), b.RawData()...)
	return blocks.NewBlockWithCid(bad, c)
}

type peerNode struct {
	h  *host.Host
	bs blockstore.Blockstore
	ex *Exchange
}

func newPeer(t *testing.T, bs blockstore.Blockstore, isLAN func(peer.ID) bool) *peerNode {
	t.Helper()
	return newPeerWith(t, bs, Config{IsLAN: isLAN, StallTimeout: time.Second})
}

// newPeerWith is a node on a loopback host with an exchange of cfg over bs,
// both closed when the test ends.
func newPeerWith(t *testing.T, bs blockstore.Blockstore, cfg Config) *peerNode {
	t.Helper()
	h := newLoopbackHost(t)
	cfg.Host, cfg.Blockstore = h, bs
	ex := New(t.Context(), cfg)
	t.Cleanup(func() { ex.Close() })
	return &peerNode{h: h, bs: bs, ex: ex}
}

func link(t *testing.T, a, b *peerNode) {
	t.Helper()
	if err := a.h.Connect(t.Context(), peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

func makeBlocks(t *testing.T, n, size int) []blocks.Block {
	var out []blocks.Block
	for i := range n {
		data := bytes.Repeat([]byte{byte(i), byte(i >> 8), 7}, size/3)
		b, err := blocks.NewBlockWithCid(data, content.RawCID(data))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func fetchAll(t *testing.T, ex *Exchange, bs []blocks.Block) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var cids []cid.Cid
	for _, b := range bs {
		cids = append(cids, b.Cid())
	}
	n := 0
	for b := range ex.GetBlocks(ctx, cids) {
		if err := content.VerifyBlock(b.Cid(), b.RawData()); err != nil {
			t.Fatalf("exchange delivered an unverified block: %v", err)
		}
		n++
	}
	return n
}

func TestFetchStoresAndCountsBySource(t *testing.T) {
	blks := makeBlocks(t, 8, 64<<10)
	seedStore, lanStore := newStore(), newStore()
	for _, b := range blks[:4] {
		seedStore.Put(t.Context(), b)
	}
	for _, b := range blks[4:] {
		lanStore.Put(t.Context(), b)
	}
	seed := newPeer(t, seedStore, nil)
	lan := newPeer(t, lanStore, nil)
	dev := newPeer(t, newStore(), func(p peer.ID) bool { return p == lan.h.ID() })
	dev.ex.SetSeeds([]peer.ID{seed.h.ID()})
	link(t, dev, seed)
	link(t, dev, lan)
	if n := fetchAll(t, dev.ex, blks); n != len(blks) {
		t.Fatalf("got %d of %d blocks", n, len(blks))
	}
	for _, b := range blks {
		if has, _ := dev.bs.Has(t.Context(), b.Cid()); !has {
			t.Fatalf("fetched block %s not stored", b.Cid())
		}
	}
	tr := dev.ex.Traffic()
	half := uint64(4 * len(blks[0].RawData()))
	if tr.FromSeed != half || tr.FromLAN != half || tr.FromPeers != 0 {
		t.Fatalf("traffic %+v, want %d from the seed and %d from the LAN peer", tr, half, half)
	}
	if seed.ex.Traffic().Served != half {
		t.Fatalf("seed served %d, want %d", seed.ex.Traffic().Served, half)
	}
}

func TestWrongBytesAreRejectedAndFetchedElsewhere(t *testing.T) {
	blks := makeBlocks(t, 4, 32<<10)
	evilStore, honestStore := newStore(), newStore()
	for _, b := range blks {
		evilStore.Put(t.Context(), b)
		honestStore.Put(t.Context(), b)
	}
	evil := newPeer(t, lyingStore{evilStore}, nil)
	dev := newPeer(t, newStore(), nil)
	link(t, dev, evil)
	// Only the liar is connected: nothing arrives, nothing is stored.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	n := 0
	for range dev.ex.GetBlocks(ctx, []cid.Cid{blks[0].Cid()}) {
		n++
	}
	cancel()
	if n != 0 {
		t.Fatal("a block with the wrong bytes was delivered")
	}
	if has, _ := dev.bs.Has(t.Context(), blks[0].Cid()); has {
		t.Fatal("a block with the wrong bytes was stored")
	}
	honest := newPeer(t, honestStore, nil)
	link(t, dev, honest)
	if n := fetchAll(t, dev.ex, blks); n != len(blks) {
		t.Fatalf("got %d of %d blocks with an honest peer present", n, len(blks))
	}
}

func TestBandwidthCap(t *testing.T) {
	const capBytes = 1 << 20 // 1 MiB/s
	for _, side := range []string{"download cap on the fetcher", "upload cap on the server"} {
		t.Run(side, func(t *testing.T) {
			blks := makeBlocks(t, 12, 256<<10) // 3 MiB
			srcStore := newStore()
			for _, b := range blks {
				srcStore.Put(t.Context(), b)
			}
			var srcCap, devCap Rate
			if side == "upload cap on the server" {
				srcCap.Up = capBytes
			} else {
				devCap.Down = capBytes
			}
			src := newCappedPeer(t, srcStore, srcCap)
			dev := newCappedPeer(t, newStore(), devCap)
			link(t, dev, src)
			start := time.Now()
			if n := fetchAll(t, dev.ex, blks); n != len(blks) {
				t.Fatalf("got %d of %d blocks", n, len(blks))
			}
			took := time.Since(start)
			total := 0
			for _, b := range blks {
				total += len(b.RawData())
			}
			// Lower bound only: the bucket starts full (one burst), the rest
			// waits for tokens. Faster means the cap is not applied.
			floor := time.Duration(float64(total-capBytes/10) / capBytes * float64(time.Second) * 0.9)
			t.Logf("%d bytes under a %d B/s cap took %v (floor %v)", total, capBytes, took, floor)
			if took < floor {
				t.Fatalf("capped fetch of %d bytes took %v, faster than the cap allows (%v)", total, took, floor)
			}
		})
	}
}

// newLoopbackHost is a libp2p host on 127.0.0.1, closed when the test ends.
func newLoopbackHost(t *testing.T) *host.Host {
	t.Helper()
	h, err := host.New(t.Context(), host.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func newCappedPeer(t *testing.T, bs blockstore.Blockstore, c Rate) *peerNode {
	t.Helper()
	return newPeerWith(t, bs, Config{Cap: c, StallTimeout: 5 * time.Second})
}

// TestSlowPeerDoesNotStallTheFetch: one peer trickles blocks at 16 KiB/s
// (a slow-retrieval attack, or a bad link); an honest peer has them too.
// The fetch must not wait on the slow peer: alone it would need over a
// minute for this much data; the test allows 30 s.
func TestSlowPeerDoesNotStallTheFetch(t *testing.T) {
	blks := makeBlocks(t, 8, 128<<10) // 1 MiB
	slowStore, fastStore := newStore(), newStore()
	for _, b := range blks {
		slowStore.Put(t.Context(), b)
		fastStore.Put(t.Context(), b)
	}
	slow := newCappedPeer(t, slowStore, Rate{Up: 16 << 10})
	fast := newCappedPeer(t, fastStore, Rate{})
	dev := newCappedPeer(t, newStore(), Rate{})
	link(t, dev, slow)
	link(t, dev, fast)
	if n := fetchAll(t, dev.ex, blks); n != len(blks) {
		t.Fatalf("got %d of %d blocks", n, len(blks))
	}
	t.Logf("slow peer served %d bytes, fast peer %d", slow.ex.Traffic().Served, fast.ex.Traffic().Served)
}
