package exchange

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/time/rate"
)

// Rate caps the block exchange of a node, in bytes per second; zero means
// no cap. Gossip and catch-up are not capped: they are small, and a
// manifest should never wait behind blocks.
type Rate struct{ Up, Down int }

// limitedHost hands bitswap's network layer streams whose reads and writes
// draw from node-wide token buckets, and notes when the exchange last read
// any bytes (stallSource: a block on its way is not a stuck fetch). Only
// the streams of the block exchange pass through it; the transport itself
// is libp2p's own.
type limitedHost struct {
	host.Host
	up, down *rate.Limiter // nil: no cap
	lastRead *atomic.Int64 // unix nanoseconds
}

func newLimitedHost(h host.Host, r Rate, lastRead *atomic.Int64) host.Host {
	return &limitedHost{Host: h, up: limiter(r.Up), down: limiter(r.Down), lastRead: lastRead}
}

// limiter allows bytesPerSec with a burst of a tenth of a second (at least
// 16 KiB, so that one read or write is never split too finely).
func limiter(bytesPerSec int) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bytesPerSec), max(bytesPerSec/10, 16<<10))
}

func (h *limitedHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return &limitedStream{Stream: s, up: h.up, down: h.down, lastRead: h.lastRead}, nil
}

func (h *limitedHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) {
		handler(&limitedStream{Stream: s, up: h.up, down: h.down, lastRead: h.lastRead})
	})
}

type limitedStream struct {
	network.Stream
	up, down *rate.Limiter
	lastRead *atomic.Int64
}

func (s *limitedStream) Read(p []byte) (int, error) {
	if s.down == nil {
		n, err := s.Stream.Read(p)
		if n > 0 {
			s.lastRead.Store(time.Now().UnixNano())
		}
		return n, err
	}
	n, err := s.Stream.Read(p[:min(len(p), s.down.Burst())])
	if n > 0 {
		s.lastRead.Store(time.Now().UnixNano())
		if werr := s.down.WaitN(context.Background(), n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

func (s *limitedStream) Write(p []byte) (int, error) {
	if s.up == nil {
		return s.Stream.Write(p)
	}
	written := 0
	for len(p) > 0 {
		piece := p[:min(len(p), s.up.Burst())]
		if err := s.up.WaitN(context.Background(), len(piece)); err != nil {
			return written, err
		}
		n, err := s.Stream.Write(piece)
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}
