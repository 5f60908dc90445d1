package reqresp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Handler answers one request from a peer. Returning an error sends its
// message to the requester instead of a response.
type Handler func(ctx context.Context, from peer.ID, req []byte) ([]byte, error)

// DefaultTimeout bounds a whole exchange when the caller gives none.
const DefaultTimeout = 10 * time.Second

// Status bytes that precede a response body.
const (
	statusOK    = 0
	statusError = 1
)

// Serve registers h for protocol id on the host. Requests longer than
// maxReq bytes are refused unread. Each exchange has DefaultTimeout.
func Serve(hst host.Host, id protocol.ID, maxReq int, log *slog.Logger, h Handler) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hst.SetStreamHandler(id, func(s network.Stream) {
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(DefaultTimeout))
		ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
		defer cancel()
		req, err := ReadFrame(bufio.NewReader(s), maxReq)
		if err != nil {
			log.Debug("bad request", "protocol", id, "peer", s.Conn().RemotePeer(), "err", err)
			s.Reset()
			return
		}
		resp, herr := h(ctx, s.Conn().RemotePeer(), req)
		status := byte(statusOK)
		if herr != nil {
			status, resp = statusError, []byte(herr.Error())
		}
		if _, err := s.Write([]byte{status}); err != nil {
			s.Reset()
			return
		}
		if err := WriteFrame(s, resp); err != nil {
			s.Reset()
		}
	})
}

// Request opens a stream to p, sends req and returns the response, refusing
// one longer than maxResp bytes.
func Request(ctx context.Context, hst host.Host, p peer.ID, id protocol.ID, req []byte, maxResp int) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	s, err := hst.NewStream(ctx, p, id)
	if err != nil {
		return nil, fmt.Errorf("reqresp: open %s to %s: %w", id, p, err)
	}
	defer s.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	if err := WriteFrame(s, req); err != nil {
		s.Reset()
		return nil, fmt.Errorf("reqresp: send to %s: %w", p, err)
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return nil, fmt.Errorf("reqresp: send to %s: %w", p, err)
	}
	r := bufio.NewReader(s)
	status, err := r.ReadByte()
	if err != nil {
		s.Reset()
		return nil, fmt.Errorf("reqresp: response from %s: %w", p, err)
	}
	body, err := ReadFrame(r, maxResp)
	if err != nil {
		s.Reset()
		return nil, fmt.Errorf("reqresp: response from %s: %w", p, err)
	}
	if status != statusOK {
		return nil, fmt.Errorf("%w %s: %s", ErrRemote, p, truncate(body, 200))
	}
	return body, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// WriteFrame writes len(b) as a uvarint, then b.
func WriteFrame(w io.Writer, b []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(b)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// ReadFrame reads one frame of at most max bytes. The length must be in
// its minimal varint form, so that a frame has exactly one encoding.
func ReadFrame(r *bufio.Reader, max int) ([]byte, error) {
	var hdr [binary.MaxVarintLen64]byte
	i := 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		hdr[i] = c
		i++
		if c < 0x80 {
			break
		}
		if i == len(hdr) {
			return nil, errMalformedLength
		}
	}
	n, used := binary.Uvarint(hdr[:i])
	if used != i || binary.PutUvarint(make([]byte, binary.MaxVarintLen64), n) != i {
		return nil, errMalformedLength
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

var errMalformedLength = errors.New("reqresp: malformed frame length")
