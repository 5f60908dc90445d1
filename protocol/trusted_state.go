package protocol

import (
	"fmt"
	"slices"
	"time"

	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/protocol/codec"
)

// UpdateRoot verifies data, the signed trust root following the current
// one (version + 1, signed by a threshold of the current and of its own
// root role, not expired at now), and makes it current. If no key of the
// old release role remains in the new one, the channel marks are cleared:
// manifests signed by the old keys no longer verify, so this cannot reopen
// a rollback, and it undoes a fast-forward made with stolen release keys.
func (s *TrustedState) UpdateRoot(data []byte, now time.Time, l Limits) error {
	l = l.withDefaults()
	if len(data) > l.MaxRootBytes {
		return fmt.Errorf("%w: root of %d bytes, limit %d", ErrTooLarge, len(data), l.MaxRootBytes)
	}
	env, err := crypto.ParseEnvelope(data, l.MaxRootBytes)
	if err != nil {
		return fmt.Errorf("%w: %w: %w", ErrRootUpdate, ErrMalformed, err)
	}
	next, err := crypto.WalkRoots(s.Root, []*crypto.Envelope{env}, now)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRootUpdate, err)
	}
	old := s.Root.Roles[crypto.RoleRelease].KeyIDs
	kept := false
	for _, id := range next.Roles[crypto.RoleRelease].KeyIDs {
		kept = kept || slices.Contains(old, id)
	}
	s.Root = next
	if !kept {
		s.Channels = make(map[string]ChannelMark)
	}
	return nil
}

// trustedStateDoc is the stored form of a TrustedState: the root's payload
// (its signatures were checked when it was accepted; the file is the node's
// own) and the channel marks.
type trustedStateDoc struct {
	Root     []byte                 `cbor:"1,keyasint"`
	Channels map[string]ChannelMark `cbor:"2,keyasint"`
}

// MarshalTrustedState encodes s for the node's state file.
func MarshalTrustedState(s *TrustedState) ([]byte, error) {
	root, err := s.Root.MarshalPayload()
	if err != nil {
		return nil, err
	}
	return codec.Marshal(&trustedStateDoc{Root: root, Channels: s.Channels})
}

// ParseTrustedState decodes what MarshalTrustedState wrote. The file is
// trusted (it is the node's own, checksummed by node/statefile); the root's
// expiry is not checked here so that a node with an expired root can still
// start and fetch the next one.
func ParseTrustedState(data []byte) (*TrustedState, error) {
	var d trustedStateDoc
	if err := codec.Unmarshal(data, &d, codec.Limits{MaxBytes: 16 << 20, MaxElements: 1 << 16}); err != nil {
		return nil, fmt.Errorf("%w: trusted state: %v", ErrMalformed, err)
	}
	root, err := crypto.ParseRoot(&crypto.Envelope{PayloadType: crypto.RootPayloadType, Payload: d.Root})
	if err != nil {
		return nil, fmt.Errorf("%w: trusted state root: %w", ErrMalformed, err)
	}
	s := NewTrustedState(root)
	for ch, m := range d.Channels {
		if err := ValidateChannel(ch); err != nil {
			return nil, err
		}
		s.Channels[ch] = m
	}
	return s, nil
}

// UpdateRoots applies a root chain (a RootChainResponse's Roots, in
// order). Roots not newer than the current one are skipped, so that an
// overlapping answer is harmless; the first invalid root stops the walk
// with its error, keeping what was applied before it.
func (s *TrustedState) UpdateRoots(chain [][]byte, now time.Time, l Limits) error {
	l = l.withDefaults()
	if len(chain) > l.MaxRootChain {
		return fmt.Errorf("%w: chain of %d roots, limit %d", ErrLimitExceeded, len(chain), l.MaxRootChain)
	}
	for i, data := range chain {
		if len(data) <= l.MaxRootBytes {
			if env, err := crypto.ParseEnvelope(data, l.MaxRootBytes); err == nil {
				if r, err := crypto.ParseRoot(env); err == nil && r.Version <= s.Root.Version {
					continue
				}
			}
		}
		if err := s.UpdateRoot(data, now, l); err != nil {
			return fmt.Errorf("root %d of the chain: %w", i, err)
		}
	}
	return nil
}
