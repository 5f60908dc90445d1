package crypto

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"strconv"

	"github.com/meshota/meshota/protocol/codec"
)

// Envelope bounds.
const (
	// MaxSignatures bounds the signatures of one envelope.
	MaxSignatures = 64
	// MaxPayloadTypeLen bounds an envelope's payload type.
	MaxPayloadTypeLen = 128
)

// Envelope is a signed document in the manner of DSSE: the payload bytes
// exactly as signed, their type, and one or more signatures. Each signature
// is an Ed25519 signature over PAE(PayloadType, Payload), so a signature
// never verifies for another payload type. Payload is never re-encoded
// before verification.
//
// Encoded (codec, deterministic CBOR) as
// {1: PayloadType text, 2: Payload bytes, 3: [{1: KeyID bytes(32), 2: Sig bytes(64)}, ...]}.
type Envelope struct {
	PayloadType string      `cbor:"1,keyasint"`
	Payload     []byte      `cbor:"2,keyasint"`
	Signatures  []Signature `cbor:"3,keyasint"`
}

// Signature is one signer's signature. KeyID is a hint that names the key;
// verification looks the key up by it and counts each distinct public key
// at most once.
type Signature struct {
	KeyID KeyID  `cbor:"1,keyasint"`
	Sig   []byte `cbor:"2,keyasint"`
}

// PAE is DSSE v1's pre-authentication encoding, the exact bytes signed:
//
//	"DSSEv1" SP LEN(type) SP type SP LEN(payload) SP payload
//
// where SP is one space (0x20) and LEN is the byte length in ASCII decimal
// without leading zeros.
func PAE(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.Grow(32 + len(payloadType) + len(payload))
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.Write(payload)
	return b.Bytes()
}

// Sign returns an envelope of payload signed by every key (a key given twice
// signs once). It needs at least one key.
func Sign(payloadType string, payload []byte, keys ...*SigningKey) (*Envelope, error) {
	if err := checkPayloadType(payloadType); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: signing needs at least one key", ErrMalformedEnvelope)
	}
	e := &Envelope{PayloadType: payloadType, Payload: bytes.Clone(payload)}
	for _, k := range keys {
		if err := e.AddSignature(k); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// AddSignature adds k's signature, for signers who sign one after the
// other. It does nothing if k already signed.
func (e *Envelope) AddSignature(k *SigningKey) error {
	if k == nil {
		return fmt.Errorf("%w: nil signing key", ErrMalformedKey)
	}
	if err := checkPayloadType(e.PayloadType); err != nil {
		return err
	}
	id := k.Public().ID()
	for _, s := range e.Signatures {
		if s.KeyID == id {
			return nil
		}
	}
	if len(e.Signatures) >= MaxSignatures {
		return fmt.Errorf("%w: already %d signatures, the limit", ErrMalformedEnvelope, MaxSignatures)
	}
	e.Signatures = append(e.Signatures, Signature{KeyID: id, Sig: k.sign(PAE(e.PayloadType, e.Payload))})
	return nil
}

// Marshal encodes the envelope.
func (e *Envelope) Marshal() ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	return codec.Marshal(e)
}

// ParseEnvelope decodes an envelope of at most maxBytes bytes (0 means
// codec.DefaultLimits.MaxBytes). It checks the structure only: use
// VerifyThreshold to check the signatures.
func ParseEnvelope(data []byte, maxBytes int) (*Envelope, error) {
	var e Envelope
	if err := codec.Unmarshal(data, &e, codec.Limits{MaxBytes: maxBytes, MaxElements: MaxSignatures}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedEnvelope, err)
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	return &e, nil
}

func (e *Envelope) check() error {
	if e == nil {
		return fmt.Errorf("%w: nil envelope", ErrMalformedEnvelope)
	}
	if err := checkPayloadType(e.PayloadType); err != nil {
		return err
	}
	if len(e.Signatures) == 0 {
		return fmt.Errorf("%w: no signature", ErrMalformedEnvelope)
	}
	if len(e.Signatures) > MaxSignatures {
		return fmt.Errorf("%w: %d signatures, limit %d", ErrMalformedEnvelope, len(e.Signatures), MaxSignatures)
	}
	for i, s := range e.Signatures {
		if len(s.Sig) != ed25519.SignatureSize {
			return fmt.Errorf("%w: signature %d has %d bytes, want %d", ErrMalformedEnvelope, i, len(s.Sig), ed25519.SignatureSize)
		}
	}
	return nil
}

func checkPayloadType(t string) error {
	if t == "" || len(t) > MaxPayloadTypeLen {
		return fmt.Errorf("%w: payload type must be 1 to %d bytes, got %d", ErrMalformedEnvelope, MaxPayloadTypeLen, len(t))
	}
	return nil
}

// Role is a set of keys and how many of them must sign.
type Role struct {
	KeyIDs    []KeyID `cbor:"1,keyasint"`
	Threshold int     `cbor:"2,keyasint"`
}

// VerifyThreshold checks that e carries payloadType and valid signatures by
// at least role.Threshold distinct public keys of role, looked up in keys.
// Each distinct public key counts once however many signatures or key IDs
// it has. Signatures by other keys, or invalid ones, are ignored. A role
// whose threshold is below 1 or above its number of distinct known keys is
// refused (ErrBadThreshold); too few valid signatures give
// ErrThresholdNotMet; another payload type gives ErrPayloadType.
func VerifyThreshold(e *Envelope, payloadType string, keys map[KeyID]PublicKey, role Role) error {
	if e == nil {
		return fmt.Errorf("%w: nil envelope", ErrMalformedEnvelope)
	}
	if e.PayloadType != payloadType {
		return fmt.Errorf("%w: got %q, want %q", ErrPayloadType, e.PayloadType, payloadType)
	}
	// The role's distinct public keys.
	members := make(map[PublicKey]bool, len(role.KeyIDs))
	for _, id := range role.KeyIDs {
		if pk, ok := keys[id]; ok && !pk.IsZero() {
			members[pk] = true
		}
	}
	if role.Threshold < 1 || role.Threshold > len(members) {
		return fmt.Errorf("%w: threshold %d with %d distinct known keys", ErrBadThreshold, role.Threshold, len(members))
	}
	inRole := make(map[KeyID]bool, len(role.KeyIDs))
	for _, id := range role.KeyIDs {
		inRole[id] = true
	}
	msg := PAE(e.PayloadType, e.Payload)
	counted := make(map[PublicKey]bool, role.Threshold)
	for _, s := range e.Signatures {
		if !inRole[s.KeyID] {
			continue
		}
		pk, ok := keys[s.KeyID]
		if !ok || counted[pk] || !members[pk] {
			continue
		}
		if pk.verify(msg, s.Sig) {
			counted[pk] = true
			if len(counted) >= role.Threshold {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %d valid signatures by distinct role keys, %d required", ErrThresholdNotMet, len(counted), role.Threshold)
}
