package protocol

import (
	"fmt"

	"github.com/meshota/meshota/protocol/codec"
)

// LatestManifestRequest asks a peer (ProtocolLatestManifest) for the latest
// manifest it accepted on a channel.
type LatestManifestRequest struct {
	Channel string `cbor:"1,keyasint"`
	// HaveSequence is the requester's highest accepted sequence: a peer
	// with nothing newer answers with an empty response.
	HaveSequence uint64 `cbor:"2,keyasint,omitempty"`
}

// LatestManifestResponse carries the signed manifest envelope, exactly as
// received and accepted by the peer, or nothing.
type LatestManifestResponse struct {
	Manifest []byte `cbor:"1,keyasint,omitempty"`
}

// RootChainRequest asks a peer (ProtocolRootChain) for the signed trust
// roots following version HaveVersion.
type RootChainRequest struct {
	HaveVersion uint64 `cbor:"1,keyasint"`
}

// RootChainResponse carries signed root envelopes of consecutive versions
// HaveVersion+1, HaveVersion+2, … (at most Limits.MaxRootChain; ask again
// from the last one for more).
type RootChainResponse struct {
	Roots [][]byte `cbor:"1,keyasint,omitempty"`
}

// Encode returns the request bytes.
func (r *LatestManifestRequest) Encode() ([]byte, error) {
	if err := ValidateChannel(r.Channel); err != nil {
		return nil, err
	}
	return codec.Marshal(r)
}

// Encode returns the response bytes.
func (r *LatestManifestResponse) Encode() ([]byte, error) { return codec.Marshal(r) }

// Encode returns the request bytes.
func (r *RootChainRequest) Encode() ([]byte, error) { return codec.Marshal(r) }

// Encode returns the response bytes.
func (r *RootChainResponse) Encode() ([]byte, error) { return codec.Marshal(r) }

// ParseLatestManifestRequest decodes and checks a request.
func ParseLatestManifestRequest(data []byte, l Limits) (*LatestManifestRequest, error) {
	var r LatestManifestRequest
	if err := decodeSmall(data, &r, 256, 4); err != nil {
		return nil, err
	}
	if err := ValidateChannel(r.Channel); err != nil {
		return nil, err
	}
	return &r, nil
}

// ParseLatestManifestResponse decodes a response; the manifest inside must
// still go through ValidateManifest.
func ParseLatestManifestResponse(data []byte, l Limits) (*LatestManifestResponse, error) {
	l = l.withDefaults()
	var r LatestManifestResponse
	if err := decodeSmall(data, &r, l.MaxManifestBytes+16, 4); err != nil {
		return nil, err
	}
	if len(r.Manifest) > l.MaxManifestBytes {
		return nil, fmt.Errorf("%w: manifest of %d bytes, limit %d", ErrTooLarge, len(r.Manifest), l.MaxManifestBytes)
	}
	return &r, nil
}

// ParseRootChainRequest decodes a request.
func ParseRootChainRequest(data []byte, l Limits) (*RootChainRequest, error) {
	var r RootChainRequest
	if err := decodeSmall(data, &r, 64, 4); err != nil {
		return nil, err
	}
	return &r, nil
}

// ParseRootChainResponse decodes a response and checks its bounds; each
// root must still be verified (TrustedState.UpdateRoots).
func ParseRootChainResponse(data []byte, l Limits) (*RootChainResponse, error) {
	l = l.withDefaults()
	var r RootChainResponse
	if err := decodeSmall(data, &r, l.MaxCatchupBytes, 4*l.MaxRootChain); err != nil {
		return nil, err
	}
	if len(r.Roots) > l.MaxRootChain {
		return nil, fmt.Errorf("%w: chain of %d roots, limit %d", ErrLimitExceeded, len(r.Roots), l.MaxRootChain)
	}
	for _, b := range r.Roots {
		if len(b) > l.MaxRootBytes {
			return nil, fmt.Errorf("%w: root of %d bytes, limit %d", ErrTooLarge, len(b), l.MaxRootBytes)
		}
	}
	return &r, nil
}

func decodeSmall(data []byte, v any, maxBytes, maxElems int) error {
	if len(data) > maxBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), maxBytes)
	}
	if err := codec.Unmarshal(data, v, codec.Limits{MaxBytes: maxBytes, MaxElements: maxElems}); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}
