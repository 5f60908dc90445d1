package crypto

import (
	"crypto/hpke"
	"encoding/binary"
	"fmt"
)

// sealedKeyInfo starts the HPKE info of a sealed epoch key; the epoch (8
// bytes big-endian) and the channel follow.
const sealedKeyInfo = "meshota/v1 sealed key\x00"

// MaxChannelLen bounds the channel name bound into a sealed key.
const MaxChannelLen = 1024

func sealInfo(channel string, epoch uint64) ([]byte, error) {
	if len(channel) > MaxChannelLen {
		return nil, fmt.Errorf("channel name of %d bytes, limit %d", len(channel), MaxChannelLen)
	}
	info := make([]byte, 0, len(sealedKeyInfo)+8+len(channel))
	info = append(info, sealedKeyInfo...)
	info = binary.BigEndian.AppendUint64(info, epoch)
	return append(info, channel...), nil
}

// SealedKeySize returns the length of SealKey's output for kem: the HPKE
// encapsulated key, the 32-byte key and the 16-byte tag.
func SealedKeySize(kem KEM) int {
	switch kem {
	case KEMX25519:
		return 32 + 32 + 16
	case KEMMLKEM768X25519:
		return 1120 + 32 + 16
	}
	return 0
}

// SealKey encrypts key to pub with single-shot HPKE (RFC 9180 base mode,
// pub's KEM, HKDF-SHA256, AES-256-GCM). The HPKE info binds the channel and
// the epoch, so the result opens only for that device key, channel and
// epoch. The output is the encapsulated key followed by the ciphertext.
func SealKey(pub DevicePublicKey, channel string, epoch uint64, key *SymmetricKey) ([]byte, error) {
	hk, err := pub.kem.hpke()
	if err != nil {
		return nil, err
	}
	pk, err := hk.NewPublicKey([]byte(pub.key))
	if err != nil {
		return nil, fmt.Errorf("%w: %s device public key: %v", ErrMalformedKey, pub.kem, err)
	}
	info, err := sealInfo(channel, epoch)
	if err != nil {
		return nil, err
	}
	out, err := hpke.Seal(pk, hpkeKDF, hpkeAEAD, info, key[:])
	if err != nil {
		return nil, fmt.Errorf("sealing a key to a %s device key: %w", pub.kem, err)
	}
	return out, nil
}

// OpenKey reverses SealKey. A wrong device key, channel or epoch, or altered
// bytes, give ErrDecrypt.
func (k *DeviceKey) OpenKey(channel string, epoch uint64, sealed []byte) (SymmetricKey, error) {
	var out SymmetricKey
	if len(sealed) != SealedKeySize(k.kem) {
		return out, fmt.Errorf("%w: sealed key of %d bytes, want %d for %s", ErrDecrypt, len(sealed), SealedKeySize(k.kem), k.kem)
	}
	info, err := sealInfo(channel, epoch)
	if err != nil {
		return out, fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	pt, err := hpke.Open(k.priv, hpkeKDF, hpkeAEAD, info, sealed)
	if err != nil || len(pt) != len(out) {
		return out, fmt.Errorf("%w: not sealed to this device key for channel %q epoch %d, or altered", ErrDecrypt, channel, epoch)
	}
	copy(out[:], pt)
	return out, nil
}
