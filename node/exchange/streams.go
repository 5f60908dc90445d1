package exchange

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// streamReuse is bitswap's libp2p network with one change: the messages
// bitswap's server sends (blocks, HAVEs, DONT_HAVEs) reuse an idle stream
// to the peer instead of opening a stream per message, as boxo's
// SendMessage does. With one 256 KiB chunk per message that was a stream
// per block: a yamux stream opened and closed, a multistream handshake,
// resource-manager scopes and two goroutines, several percent of the
// CPU of a fetch (docs/PERFORMANCE.md 3b). The receiving side already
// reads any number of messages from one stream (boxo's client sends its
// wantlists that way), so peers running older code are unaffected.
//
// Concurrent sends to one peer take different streams, so the receiver
// still decodes and hashes them on as many goroutines as before. A stream
// left idle for idleAfter is closed, and at most maxIdleTotal are kept
// (the oldest goes first): a seed serving a thousand devices must not
// hold thousands of streams against the resource manager's limits (2048
// outbound streams at 128 MiB); there reuse fades back to a stream per
// message.
type streamReuse struct {
	bsnetwork.BitSwapNetwork
	h         host.Host
	protos    []protocol.ID
	idleAfter time.Duration
	maxIdle   int // idle streams kept per peer
	maxTotal  int // idle streams kept in all

	mu     sync.Mutex
	idle   map[peer.ID][]idleStream
	nidle  int
	stop   chan struct{}
	closed bool
}

type idleStream struct {
	s     network.Stream
	since time.Time
}

const (
	// defaultIdleAfter: a fetch in progress asks again within
	// milliseconds; a pause of seconds means the peer is done for now.
	defaultIdleAfter = 2 * time.Second
	// maxIdlePerPeer matches bitswap's server task workers (8 by
	// default), the most messages it sends to one peer at once.
	maxIdlePerPeer = 8
	// maxIdleTotal: enough for the 8 task workers to keep their streams
	// to a few peers each.
	maxIdleTotal = 64
)

func newStreamReuse(h host.Host, idleAfter time.Duration) *streamReuse {
	r := &streamReuse{
		BitSwapNetwork: bsnet.NewFromIpfsHost(h),
		h:              h,
		protos:         []protocol.ID{bsnet.ProtocolBitswap, bsnet.ProtocolBitswapOneOne, bsnet.ProtocolBitswapOneZero, bsnet.ProtocolBitswapNoVers},
		idleAfter:      idleAfter,
		maxIdle:        maxIdlePerPeer,
		maxTotal:       maxIdleTotal,
		idle:           map[peer.ID][]idleStream{},
		stop:           make(chan struct{}),
	}
	go r.reap()
	return r
}

// SendMessage writes msg on an idle stream to p, or on a new one. A reused
// stream may have died since its last message (the peer closed it, the
// connection went): then the message goes once more on a new stream. But
// not after a write deadline: a peer that reads too slowly would hold one
// of bitswap's task workers twice as long. A failed write resets its
// stream, so the receiver drops what it got of the message.
func (r *streamReuse) SendMessage(ctx context.Context, p peer.ID, msg bsmsg.BitSwapMessage) error {
	if s := r.take(p); s != nil {
		err := r.write(s, msg)
		if err == nil {
			r.put(p, s)
			return nil
		}
		s.Reset()
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return err
		}
	}
	s, err := r.h.NewStream(ctx, p, r.protos...)
	if err != nil {
		return fmt.Errorf("bitswap stream to %s: %w", p, err)
	}
	if err := r.write(s, msg); err != nil {
		s.Reset()
		return err
	}
	r.put(p, s)
	return nil
}

// write writes msg in the wire format of the stream's protocol version,
// with boxo's write deadline for its size.
func (r *streamReuse) write(s network.Stream, msg bsmsg.BitSwapMessage) error {
	s.SetWriteDeadline(time.Now().Add(sendTimeout(msg.Size())))
	var err error
	switch s.Protocol() {
	case bsnet.ProtocolBitswap, bsnet.ProtocolBitswapOneOne:
		err = msg.ToNetV1(s)
	case bsnet.ProtocolBitswapOneZero, bsnet.ProtocolBitswapNoVers:
		err = msg.ToNetV0(s)
	default:
		err = fmt.Errorf("unrecognized bitswap protocol %q", s.Protocol())
	}
	if err != nil {
		return fmt.Errorf("send bitswap message: %w", err)
	}
	s.SetWriteDeadline(time.Time{})
	return nil
}

// sendTimeout is boxo's (bsnet) write deadline for a message of size
// bytes: 2 s plus the time at 100 kbit/s, between 10 s and 2 min.
func sendTimeout(size int) time.Duration {
	t := 2*time.Second + time.Duration(uint64(time.Second)*uint64(size)/(100*1000/8))
	return min(max(t, 10*time.Second), 2*time.Minute)
}

// take returns the most recently used idle stream to p, or nil.
func (r *streamReuse) take(p peer.ID) network.Stream {
	r.mu.Lock()
	defer r.mu.Unlock()
	for l := r.idle[p]; len(l) > 0; l = r.idle[p] {
		s := l[len(l)-1].s
		r.idle[p] = l[:len(l)-1]
		r.nidle--
		if len(r.idle[p]) == 0 {
			delete(r.idle, p)
		}
		if !s.Conn().IsClosed() {
			return s
		}
		s.Reset()
	}
	return nil
}

// put makes s an idle stream to p, or closes it if p has enough. When
// maxTotal are idle, the oldest of them is closed to make room.
func (r *streamReuse) put(p peer.ID, s network.Stream) {
	r.mu.Lock()
	if r.closed || len(r.idle[p]) >= r.maxIdle {
		r.mu.Unlock()
		closeAsync(s)
		return
	}
	if r.nidle >= r.maxTotal {
		r.evictOldest()
	}
	r.idle[p] = append(r.idle[p], idleStream{s, time.Now()})
	r.nidle++
	r.mu.Unlock()
}

// evictOldest closes the stream idle the longest (r.mu held). Each peer's
// list is oldest first.
func (r *streamReuse) evictOldest() {
	var oldest peer.ID
	var since time.Time
	for p, l := range r.idle {
		if since.IsZero() || l[0].since.Before(since) {
			oldest, since = p, l[0].since
		}
	}
	if !since.IsZero() {
		r.closeOldest(oldest, 1)
	}
}

// closeOldest closes the n streams idle the longest to p (r.mu held).
func (r *streamReuse) closeOldest(p peer.ID, n int) {
	l := r.idle[p]
	for _, x := range l[:n] {
		closeAsync(x.s)
	}
	r.nidle -= n
	if n == len(l) {
		delete(r.idle, p)
	} else {
		r.idle[p] = append(l[:0], l[n:]...)
	}
}

// reap closes the streams idle for idleAfter, until Stop.
func (r *streamReuse) reap() {
	t := time.NewTicker(r.idleAfter / 2)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			r.mu.Lock()
			for p, l := range r.idle {
				// Oldest first: put appends.
				n := 0
				for n < len(l) && now.Sub(l[n].since) >= r.idleAfter {
					n++
				}
				if n > 0 {
					r.closeOldest(p, n)
				}
			}
			r.mu.Unlock()
		}
	}
}

// idleStreams is the number of idle streams held (tests).
func (r *streamReuse) idleStreams() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nidle
}

// Stop stops bitswap's network and closes the idle streams.
func (r *streamReuse) Stop() {
	r.BitSwapNetwork.Stop()
	r.closeIdle()
}

// closeIdle closes the idle streams and stops reaping; streams in use
// are closed as their messages are sent.
func (r *streamReuse) closeIdle() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	close(r.stop)
	for _, l := range r.idle {
		for _, x := range l {
			closeAsync(x.s)
		}
	}
	r.idle = nil
	r.nidle = 0
}

// closeAsync closes s without waiting: with libp2p's lazy protocol
// negotiation Close may wait to read the peer's handshake (boxo closes its
// streams the same way, boxo issue 1142).
func closeAsync(s network.Stream) {
	go func() {
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		s.Close()
	}()
}
