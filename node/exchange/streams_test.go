package exchange

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	gohost "github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"

	"github.com/meshota/meshota/node/host"
)

// countingHost counts the streams opened through it.
type countingHost struct {
	gohost.Host
	opened atomic.Int64
}

func (c *countingHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	c.opened.Add(1)
	return c.Host.NewStream(ctx, p, pids...)
}

// TestServerReusesStreams: a seed sending 48 blocks of 256 KiB (a message
// each) opens a handful of streams, not one per message, and closes them
// once idle.
func TestServerReusesStreams(t *testing.T) {
	blks := makeBlocks(t, 48, 256<<10)
	seedStore := newStore()
	for _, b := range blks {
		seedStore.Put(t.Context(), b)
	}
	h := newLoopbackHost(t)
	ch := &countingHost{Host: h}
	seedEx := New(t.Context(), Config{Host: ch, Blockstore: seedStore, idleAfter: 300 * time.Millisecond})
	t.Cleanup(func() { seedEx.Close() })
	dev := newPeer(t, newStore(), nil)
	link(t, dev, &peerNode{h: h, bs: seedStore, ex: seedEx})
	if n := fetchAll(t, dev.ex, blks); n != len(blks) {
		t.Fatalf("got %d of %d blocks", n, len(blks))
	}
	// One for the seed's wantlist queue (unused here) and at most one per
	// server task worker (8).
	if n := ch.opened.Load(); n > 9 {
		t.Fatalf("seed opened %d streams for %d messages", n, len(blks))
	}
	deadline := time.Now().Add(5 * time.Second)
	for seedEx.net.idleStreams() > 0 || bitswapStreams(h, network.DirOutbound) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after idling: %d idle streams held, %d bitswap streams open", seedEx.net.idleStreams(), bitswapStreams(h, network.DirOutbound))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func bitswapStreams(h gohost.Host, dir network.Direction) int {
	n := 0
	for _, c := range h.Network().Conns() {
		for _, s := range c.GetStreams() {
			if s.Protocol() == bsnet.ProtocolBitswap && s.Stat().Direction == dir {
				n++
			}
		}
	}
	return n
}

// TestReusedStreamDiedResends: a message for a stream the peer reset
// meanwhile goes again on a new stream instead of failing.
func TestReusedStreamDiedResends(t *testing.T) {
	a, b := newLoopbackHost(t), newLoopbackHost(t)
	var mu sync.Mutex
	var got int
	var streams []network.Stream
	b.SetStreamHandler(bsnet.ProtocolBitswap, func(s network.Stream) {
		mu.Lock()
		streams = append(streams, s)
		mu.Unlock()
		r := msgio.NewVarintReaderSize(s, network.MessageSizeMax)
		for {
			if _, _, err := bsmsg.FromMsgReader(r); err != nil {
				return
			}
			mu.Lock()
			got++
			mu.Unlock()
		}
	})
	if err := a.Connect(t.Context(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	r := newStreamReuse(a, time.Minute)
	t.Cleanup(r.closeIdle)
	msg := bsmsg.New(false)
	msg.AddBlock(makeBlocks(t, 1, 3<<10)[0])
	waitGot := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			n := got
			mu.Unlock()
			if n == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("peer got %d messages, want %d", n, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := r.SendMessage(t.Context(), b.ID(), msg); err != nil {
		t.Fatal(err)
	}
	waitGot(1)
	if err := r.SendMessage(t.Context(), b.ID(), msg); err != nil {
		t.Fatal(err)
	}
	waitGot(2)
	mu.Lock()
	if len(streams) != 1 {
		t.Fatalf("two messages took %d streams", len(streams))
	}
	streams[0].Reset()
	mu.Unlock()
	time.Sleep(100 * time.Millisecond) // let the reset reach the sender
	if err := r.SendMessage(t.Context(), b.ID(), msg); err != nil {
		t.Fatalf("send after the peer reset the stream: %v", err)
	}
	waitGot(3)
}

// TestIdleStreamsBounded: the idle streams kept in all are capped, the
// oldest closed first, whatever the number of peers served.
func TestIdleStreamsBounded(t *testing.T) {
	a := newLoopbackHost(t)
	var peers []*host.Host
	for range 3 {
		b := newLoopbackHost(t)
		b.SetStreamHandler(bsnet.ProtocolBitswap, func(s network.Stream) {
			r := msgio.NewVarintReaderSize(s, network.MessageSizeMax)
			for {
				if _, _, err := bsmsg.FromMsgReader(r); err != nil {
					s.Close()
					return
				}
			}
		})
		if err := a.Connect(t.Context(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, b)
	}
	r := newStreamReuse(a, time.Minute)
	r.maxTotal = 2
	t.Cleanup(r.closeIdle)
	msg := bsmsg.New(false)
	msg.AddBlock(makeBlocks(t, 1, 3<<10)[0])
	for _, b := range peers {
		if err := r.SendMessage(t.Context(), b.ID(), msg); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.idleStreams(); n != 2 {
		t.Fatalf("%d idle streams kept, want 2", n)
	}
	r.mu.Lock()
	_, first := r.idle[peers[0].ID()]
	r.mu.Unlock()
	if first {
		t.Fatal("the oldest idle stream was kept")
	}
	deadline := time.Now().Add(5 * time.Second)
	for bitswapStreams(a, network.DirOutbound) > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bitswap streams still open", bitswapStreams(a, network.DirOutbound))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stuckStream is a stream whose writes run into their deadline.
type stuckStream struct {
	network.Stream
	conn network.Conn
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o deadline reached" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func (s *stuckStream) Write([]byte) (int, error)        { return 0, timeoutError{} }
func (s *stuckStream) SetWriteDeadline(time.Time) error { return nil }
func (s *stuckStream) Protocol() protocol.ID            { return bsnet.ProtocolBitswap }
func (s *stuckStream) Conn() network.Conn               { return s.conn }
func (s *stuckStream) Reset() error                     { return nil }

// TestSlowPeerNotAskedTwice: a message whose reused stream ran into its
// write deadline fails; it is not written again on a new stream.
func TestSlowPeerNotAskedTwice(t *testing.T) {
	a, b := newLoopbackHost(t), newLoopbackHost(t)
	if err := a.Connect(t.Context(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	ch := &countingHost{Host: a}
	r := newStreamReuse(ch, time.Minute)
	t.Cleanup(r.closeIdle)
	r.put(b.ID(), &stuckStream{conn: a.Network().ConnsToPeer(b.ID())[0]})
	msg := bsmsg.New(false)
	msg.AddBlock(makeBlocks(t, 1, 3<<10)[0])
	err := r.SendMessage(t.Context(), b.ID(), msg)
	if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
		t.Fatalf("send on a stuck stream: %v, want its timeout", err)
	}
	if n := ch.opened.Load(); n != 0 {
		t.Fatalf("the message went again on %d new streams", n)
	}
}
