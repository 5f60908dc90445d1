package protocol

import (
	"fmt"
	"time"

	"github.com/meshota/meshota/crypto"
)

// TrustedState is what a node trusts: the current trust root and, per
// channel, the last manifest accepted. It is plain data owned by one
// goroutine of the caller; validation reads it, only Accept and UpdateRoot
// change it.
type TrustedState struct {
	Root     *crypto.Root
	Channels map[string]ChannelMark
}

// NewTrustedState starts from a verified root with no manifest accepted.
func NewTrustedState(root *crypto.Root) *TrustedState {
	return &TrustedState{Root: root, Channels: make(map[string]ChannelMark)}
}

// ValidateManifest decides whether the signed manifest data, received on the
// topic of topicChannel, may be forwarded and acted upon at time now. It
// returns the decoded manifest or an error wrapping one sentinel of
// errors.go; checks run in the order documented in docs/PROTOCOL.md. It
// does not change state: call state.Accept once the caller acts on it.
func ValidateManifest(data []byte, state *TrustedState, topicChannel string, now time.Time, l Limits) (*Manifest, error) {
	l = l.withDefaults()
	if state == nil || state.Root == nil {
		return nil, fmt.Errorf("%w: no trusted root; provision the node with one first", ErrThresholdNotMet)
	}
	env, err := openEnvelope(data, l.MaxManifestBytes, ManifestPayloadType)
	if err != nil {
		return nil, err
	}
	m, err := decodeManifestPayload(env.Payload, l)
	if err != nil {
		return nil, err
	}
	if m.Channel != topicChannel {
		return nil, fmt.Errorf("%w: manifest for %q arrived on the topic of %q", ErrWrongChannel, m.Channel, topicChannel)
	}
	if err := verifyRelease(env, state.Root, m.RootVersion); err != nil {
		return nil, err
	}
	if !now.Before(state.Root.Expires) {
		// An expired root is refused for new releases (freeze protection
		// for the keys themselves); a rotated root, fetched by catch-up,
		// lifts this.
		return nil, fmt.Errorf("%w: trust root v%d expired at %s; the publisher must rotate it", ErrExpired, state.Root.Version, state.Root.Expires.UTC().Format(time.RFC3339))
	}
	if err := checkManifestTime(m, now, l); err != nil {
		return nil, err
	}
	mark, have := state.Channels[m.Channel]
	if err := checkFreshness(mark, have, m); err != nil {
		return nil, err
	}
	m.validated = true
	return m, nil
}

// Accept records m, which ValidateManifest returned, as the latest manifest
// of its channel. It re-checks freshness, so that two manifests validated
// against the same state cannot both be accepted out of order.
func (s *TrustedState) Accept(m *Manifest) error {
	if !m.validated {
		return ErrNotValidated
	}
	mark, have := s.Channels[m.Channel]
	if err := checkFreshness(mark, have, m); err != nil {
		return err
	}
	if s.Channels == nil {
		s.Channels = make(map[string]ChannelMark)
	}
	s.Channels[m.Channel] = ChannelMark{Sequence: m.Sequence, Digest: m.digest, Version: m.Version}
	return nil
}

// SignManifest checks m, encodes it and signs the payload with keys (the
// release role's keys of the root named by m.RootVersion). It returns the
// envelope bytes to publish.
func SignManifest(m *Manifest, l Limits, keys ...*crypto.SigningKey) ([]byte, error) {
	payload, err := EncodeManifest(m, l)
	if err != nil {
		return nil, err
	}
	return signPayload(ManifestPayloadType, payload, keys...)
}

// DecodeManifest decodes a signed manifest WITHOUT verifying its
// signatures, for display and tooling (meshota status, inspecting a file).
// Never act on its result.
func DecodeManifest(data []byte, l Limits) (*Manifest, error) {
	l = l.withDefaults()
	env, err := openEnvelope(data, l.MaxManifestBytes, ManifestPayloadType)
	if err != nil {
		return nil, err
	}
	return decodeManifestPayload(env.Payload, l)
}

// ValidateStatusReport checks a signed status report: bounds, a signature
// by the device's own key, that the device is enrolled (enrolled maps device
// IDs to their signing public keys) and that the report is recent.
func ValidateStatusReport(data []byte, enrolled map[DeviceID]crypto.PublicKey, topicChannel string, now time.Time, l Limits) (*StatusReport, error) {
	l = l.withDefaults()
	env, err := openEnvelope(data, l.MaxReportBytes, StatusPayloadType)
	if err != nil {
		return nil, err
	}
	r, err := decodeStatusPayload(env.Payload, l)
	if err != nil {
		return nil, err
	}
	if topicChannel != "" && r.Channel != topicChannel {
		return nil, fmt.Errorf("%w: report for %q arrived on the topic of %q", ErrWrongChannel, r.Channel, topicChannel)
	}
	pub, ok := enrolled[r.Device]
	if !ok {
		return nil, fmt.Errorf("%w: %s is not enrolled; add it with meshota fleet add", ErrUnknownDevice, r.Device)
	}
	if DeviceIDOf(pub) != r.Device {
		return nil, fmt.Errorf("%w: %s is enrolled with a key of another device", ErrDeviceMismatch, r.Device)
	}
	if err := verifySingle(env, pub); err != nil {
		return nil, err
	}
	if err := checkReportTime(r.Time, now, l); err != nil {
		return nil, err
	}
	return r, nil
}

// SignStatusReport checks r, encodes it and signs it with the device's key,
// whose ID must be r.Device.
func SignStatusReport(r *StatusReport, key *crypto.SigningKey, l Limits) ([]byte, error) {
	if DeviceIDOf(key.Public()) != r.Device {
		return nil, fmt.Errorf("%w: report names %s but is signed by %s", ErrDeviceMismatch, r.Device, DeviceIDOf(key.Public()))
	}
	payload, err := EncodeStatusReport(r, l)
	if err != nil {
		return nil, err
	}
	return signPayload(StatusPayloadType, payload, key)
}
