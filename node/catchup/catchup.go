package catchup

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshota/meshota/node/reqresp"
	"github.com/meshota/meshota/protocol"
)

// Source is what a node answers from.
type Source interface {
	// LatestManifest returns the latest accepted signed manifest of
	// channel, or nil.
	LatestManifest(channel string) []byte
	// RootsAfter returns the signed trust roots of versions after v, in
	// order (possibly none).
	RootsAfter(v uint64) [][]byte
}

// maxRequest bounds a request (they are a few dozen bytes).
const maxRequest = 512

// Serve registers both protocols on h.
func Serve(h host.Host, l protocol.Limits, log *slog.Logger, src Source) {
	l = withDefaults(l)
	reqresp.Serve(h, protocol.ProtocolLatestManifest, maxRequest, log, func(_ context.Context, _ peer.ID, req []byte) ([]byte, error) {
		r, err := protocol.ParseLatestManifestRequest(req, l)
		if err != nil {
			return nil, err
		}
		resp := protocol.LatestManifestResponse{}
		if m := src.LatestManifest(r.Channel); m != nil {
			if have, err := protocol.DecodeManifest(m, l); err == nil && have.Sequence > r.HaveSequence {
				resp.Manifest = m
			}
		}
		return resp.Encode()
	})
	reqresp.Serve(h, protocol.ProtocolRootChain, maxRequest, log, func(_ context.Context, _ peer.ID, req []byte) ([]byte, error) {
		r, err := protocol.ParseRootChainRequest(req, l)
		if err != nil {
			return nil, err
		}
		roots := src.RootsAfter(r.HaveVersion)
		resp := protocol.RootChainResponse{Roots: roots[:min(len(roots), l.MaxRootChain)]}
		return resp.Encode()
	})
}

// Stop removes the handlers Serve registered.
func Stop(h host.Host) {
	h.RemoveStreamHandler(protocol.ProtocolLatestManifest)
	h.RemoveStreamHandler(protocol.ProtocolRootChain)
}

// RequestManifest asks p for a manifest of channel newer than have. It
// returns nil when p has nothing newer. The answer is not validated here.
func RequestManifest(ctx context.Context, h host.Host, p peer.ID, channel string, have uint64, l protocol.Limits) ([]byte, error) {
	l = withDefaults(l)
	req, err := (&protocol.LatestManifestRequest{Channel: channel, HaveSequence: have}).Encode()
	if err != nil {
		return nil, err
	}
	data, err := reqresp.Request(ctx, h, p, protocol.ProtocolLatestManifest, req, l.MaxCatchupBytes)
	if err != nil {
		return nil, err
	}
	resp, err := protocol.ParseLatestManifestResponse(data, l)
	if err != nil {
		return nil, fmt.Errorf("catchup: answer from %s: %w", p, err)
	}
	return resp.Manifest, nil
}

// RequestRoots asks p for the signed trust roots after version have.
func RequestRoots(ctx context.Context, h host.Host, p peer.ID, have uint64, l protocol.Limits) ([][]byte, error) {
	l = withDefaults(l)
	req, err := (&protocol.RootChainRequest{HaveVersion: have}).Encode()
	if err != nil {
		return nil, err
	}
	data, err := reqresp.Request(ctx, h, p, protocol.ProtocolRootChain, req, l.MaxCatchupBytes)
	if err != nil {
		return nil, err
	}
	resp, err := protocol.ParseRootChainResponse(data, l)
	if err != nil {
		return nil, fmt.Errorf("catchup: answer from %s: %w", p, err)
	}
	return resp.Roots, nil
}

func withDefaults(l protocol.Limits) protocol.Limits {
	d := protocol.DefaultLimits
	if l.MaxCatchupBytes == 0 {
		l.MaxCatchupBytes = d.MaxCatchupBytes
	}
	if l.MaxRootChain == 0 {
		l.MaxRootChain = d.MaxRootChain
	}
	return l
}
