package protocol

// The glue between protocol's rules and crypto's envelopes, keys and trust
// root.

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/protocol/codec"
)

func codecMarshal(v any) ([]byte, error) { return codec.Marshal(v) }

// openEnvelope bounds, parses and type-checks a signature envelope.
func openEnvelope(data []byte, maxBytes int, payloadType string) (*crypto.Envelope, error) {
	if len(data) > maxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), maxBytes)
	}
	env, err := crypto.ParseEnvelope(data, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if env.PayloadType != payloadType {
		return nil, fmt.Errorf("%w: got %q, want %q", ErrWrongPayloadType, env.PayloadType, payloadType)
	}
	return env, nil
}

func signPayload(payloadType string, payload []byte, keys ...*crypto.SigningKey) ([]byte, error) {
	env, err := crypto.Sign(payloadType, payload, keys...)
	if err != nil {
		return nil, err
	}
	return env.Marshal()
}

// verifyRelease checks the release role's threshold under the current root;
// claimed is the root version the document says it was signed under.
func verifyRelease(env *crypto.Envelope, root *crypto.Root, claimed uint64) error {
	err := crypto.VerifyThreshold(env, env.PayloadType, root.Keys, root.Roles[crypto.RoleRelease])
	if err == nil {
		return nil
	}
	switch {
	case claimed < root.Version:
		return fmt.Errorf("%w: signed under root v%d, current is v%d and its release keys do not meet the threshold (%w); the publisher must re-sign with the current release keys", ErrOldRoot, claimed, root.Version, err)
	case claimed > root.Version:
		return fmt.Errorf("%w: signed under root v%d, ours is v%d (%w); fetch the trust-root chain and retry", ErrRootAhead, claimed, root.Version, err)
	}
	return mapSigError(err)
}

// verifySingle checks one signature by pub.
func verifySingle(env *crypto.Envelope, pub crypto.PublicKey) error {
	id := pub.ID()
	err := crypto.VerifyThreshold(env, env.PayloadType, map[crypto.KeyID]crypto.PublicKey{id: pub}, crypto.Role{KeyIDs: []crypto.KeyID{id}, Threshold: 1})
	if err != nil {
		return mapSigError(err)
	}
	return nil
}

func mapSigError(err error) error {
	if errors.Is(err, crypto.ErrThresholdNotMet) {
		return fmt.Errorf("%w: %w", ErrThresholdNotMet, err)
	}
	return fmt.Errorf("%w: %w", ErrBadSignature, err)
}

// DeviceIDOf derives the device ID of a status-signing public key: the
// first 16 bytes of SHA-256("meshota/v1 device id\x00" || raw Ed25519 key).
func DeviceIDOf(pub crypto.PublicKey) DeviceID {
	h := sha256.New()
	h.Write([]byte("meshota/v1 device id\x00"))
	h.Write(pub.Bytes())
	var id DeviceID
	copy(id[:], h.Sum(nil))
	return id
}
