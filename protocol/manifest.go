package protocol

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/protocol/codec"
)

// MaxRolloutBasisPoints is the whole fleet (100.00 %).
const MaxRolloutBasisPoints = 10000

// Manifest is the signed description of one release of one channel. Its
// payload is the deterministic CBOR encoding of this struct (integer keys as
// tagged); the signature envelope carries it as ManifestPayloadType.
type Manifest struct {
	Channel  string `cbor:"1,keyasint"`
	Sequence uint64 `cbor:"2,keyasint"` // strictly increasing per channel, ≥ 1
	Version  string `cbor:"3,keyasint"` // semantic version of the content installed
	// Created and Expires are whole seconds since the Unix epoch on the wire.
	Created time.Time `cbor:"4,keyasint"`
	Expires time.Time `cbor:"5,keyasint"`
	// RootVersion is the version of the trust root whose release role signed
	// the manifest.
	RootVersion uint64 `cbor:"6,keyasint"`
	Size        uint64 `cbor:"7,keyasint"` // plaintext bytes of the release
	BlockBytes  uint64 `cbor:"8,keyasint"` // bytes of all blocks (ciphertext) to fetch
	BlockCount  uint64 `cbor:"9,keyasint"` // number of blocks
	// Index is the root CID of the encrypted release index.
	Index cid.Cid `cbor:"10,keyasint"`
	// Blocks is the root CID of the cleartext block list: every block CID of
	// the release sorted by CID, for holders without the key (seed, peers).
	Blocks  cid.Cid    `cbor:"11,keyasint"`
	Keyring KeyringRef `cbor:"12,keyasint"`
	// SealedReleaseKey is the release key sealed under the epoch key of
	// Keyring.Epoch (see SealReleaseKey): nonce ‖ ciphertext ‖ tag.
	SealedReleaseKey []byte `cbor:"13,keyasint"`
	// RolloutBasisPoints is the share of the fleet (0..10000) eligible for
	// this release, chosen by a stable hash of the device ID (node/policy).
	RolloutBasisPoints uint16 `cbor:"14,keyasint"`
	// Supersedes is the sequence number of the manifest this one replaces (0
	// for the first of a channel); informational, always < Sequence.
	Supersedes uint64 `cbor:"15,keyasint,omitempty"`
	// Rollback marks a deliberate return to older content; RollbackTo is
	// the version it returns to and equals Version. Both are absent
	// otherwise.
	Rollback   bool   `cbor:"16,keyasint,omitempty"`
	RollbackTo string `cbor:"17,keyasint,omitempty"`

	digest    [32]byte // SHA-256 of the signed payload, set by validation
	validated bool
}

// KeyringRef names the keyring a manifest's release key is sealed for.
type KeyringRef struct {
	Root  cid.Cid `cbor:"1,keyasint"` // raw CIDv1 SHA2-256 of the keyring root block
	Epoch uint64  `cbor:"2,keyasint"` // epoch of the channel's epoch key, ≥ 1
}

// sealedKeyLen is the exact length of a sealed 32-byte key.
const sealedKeyLen = 32 + crypto.SealedOverhead

// Digest is the SHA-256 of the manifest's signed payload (zero for a
// manifest that was not decoded by ValidateManifest or DecodeManifest).
func (m *Manifest) Digest() [32]byte { return m.digest }

// EncodeManifest checks m's fields against l and returns its payload bytes
// (the bytes to sign). Times are truncated to whole seconds.
func EncodeManifest(m *Manifest, l Limits) ([]byte, error) {
	c := *m
	c.Created = c.Created.Truncate(time.Second).UTC()
	c.Expires = c.Expires.Truncate(time.Second).UTC()
	if err := c.check(l.withDefaults()); err != nil {
		return nil, err
	}
	return codec.Marshal(&c)
}

// decodeManifestPayload decodes and checks a payload (no signature).
func decodeManifestPayload(payload []byte, l Limits) (*Manifest, error) {
	var m Manifest
	if err := codec.Unmarshal(payload, &m, codec.Limits{MaxBytes: l.MaxManifestBytes, MaxElements: 64}); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrMalformed, err)
	}
	if err := m.check(l); err != nil {
		return nil, err
	}
	m.digest = sha256.Sum256(payload)
	return &m, nil
}

// check enforces every field rule that needs no trusted state or clock.
func (m *Manifest) check(l Limits) error {
	if err := ValidateChannel(m.Channel); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if m.Sequence == 0 {
		return fmt.Errorf("%w: manifest sequence must be at least 1", ErrInvalidField)
	}
	if m.Supersedes >= m.Sequence {
		return fmt.Errorf("%w: manifest supersedes %d, not lower than its sequence %d", ErrInvalidField, m.Supersedes, m.Sequence)
	}
	if len(m.Version) > l.MaxVersionLen {
		return fmt.Errorf("%w: version is %d bytes, limit %d", ErrLimitExceeded, len(m.Version), l.MaxVersionLen)
	}
	if err := ValidateVersion(m.Version); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if m.Created.IsZero() || m.Expires.IsZero() || !m.Expires.After(m.Created) {
		return fmt.Errorf("%w: manifest must have a creation time and a later expiry", ErrInvalidField)
	}
	if m.RootVersion == 0 {
		return fmt.Errorf("%w: manifest root version must be at least 1", ErrInvalidField)
	}
	if m.Size > l.MaxReleaseSize || m.BlockBytes > l.MaxReleaseSize {
		return fmt.Errorf("%w: release of %d bytes (%d in blocks), limit %d", ErrLimitExceeded, m.Size, m.BlockBytes, l.MaxReleaseSize)
	}
	if m.BlockCount > l.MaxBlockCount {
		return fmt.Errorf("%w: %d blocks, limit %d", ErrLimitExceeded, m.BlockCount, l.MaxBlockCount)
	}
	if m.BlockCount == 0 || m.BlockBytes < m.BlockCount || m.BlockBytes/m.BlockCount > l.MaxBlockSize {
		return fmt.Errorf("%w: %d blocks cannot hold %d bytes with blocks of 1 to %d bytes", ErrInvalidField, m.BlockCount, m.BlockBytes, l.MaxBlockSize)
	}
	if err := checkContentCID("index", m.Index); err != nil {
		return err
	}
	if err := checkContentCID("block list", m.Blocks); err != nil {
		return err
	}
	if err := checkContentCID("keyring root", m.Keyring.Root); err != nil {
		return err
	}
	if m.Keyring.Epoch == 0 {
		return fmt.Errorf("%w: keyring epoch must be at least 1", ErrInvalidField)
	}
	if len(m.SealedReleaseKey) != sealedKeyLen {
		return fmt.Errorf("%w: sealed release key is %d bytes, want %d", ErrInvalidField, len(m.SealedReleaseKey), sealedKeyLen)
	}
	if m.RolloutBasisPoints > MaxRolloutBasisPoints {
		return fmt.Errorf("%w: rollout %d basis points, at most %d", ErrInvalidField, m.RolloutBasisPoints, MaxRolloutBasisPoints)
	}
	if m.Rollback != (m.RollbackTo != "") {
		return fmt.Errorf("%w: rollback flag and rollback version must be set together", ErrInvalidField)
	}
	if m.Rollback && m.RollbackTo != m.Version {
		return fmt.Errorf("%w: rollback returns to %q but the manifest installs %q", ErrInvalidField, m.RollbackTo, m.Version)
	}
	return nil
}

// releaseKeyAAD binds a sealed release key to its channel, epoch, sequence
// and index, so that it cannot be lifted into another manifest.
func releaseKeyAAD(channel string, epoch, sequence uint64, index cid.Cid) []byte {
	b := make([]byte, 0, 64+len(channel))
	b = append(b, "meshota/v1 release key\x00"...)
	b = append(b, channel...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint64(b, epoch)
	b = binary.BigEndian.AppendUint64(b, sequence)
	return append(b, index.Bytes()...)
}

// SealReleaseKey seals releaseKey under the channel's epoch key for the
// manifest m (whose Channel, Keyring.Epoch, Sequence and Index must be set)
// and stores it in m.SealedReleaseKey.
func SealReleaseKey(m *Manifest, epochKey, releaseKey *crypto.SymmetricKey) {
	aad := releaseKeyAAD(m.Channel, m.Keyring.Epoch, m.Sequence, m.Index)
	m.SealedReleaseKey = crypto.Seal(epochKey, aad, releaseKey[:])
}

// OpenReleaseKey recovers the release key of a validated manifest with the
// epoch key of m.Keyring.Epoch (from OpenEpochKey).
func OpenReleaseKey(m *Manifest, epochKey *crypto.SymmetricKey) (crypto.SymmetricKey, error) {
	aad := releaseKeyAAD(m.Channel, m.Keyring.Epoch, m.Sequence, m.Index)
	pt, err := crypto.Open(epochKey, aad, m.SealedReleaseKey)
	if err != nil {
		return crypto.SymmetricKey{}, fmt.Errorf("release key of %s #%d: %w", m.Channel, m.Sequence, err)
	}
	var k crypto.SymmetricKey
	if len(pt) != len(k) {
		return k, fmt.Errorf("%w: release key is %d bytes", ErrInvalidField, len(pt))
	}
	copy(k[:], pt)
	return k, nil
}
