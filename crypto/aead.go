package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
)

// SymmetricKey is a random AES-256 key: a release key or an epoch key.
type SymmetricKey [32]byte

// NewSymmetricKey returns a fresh random key.
func NewSymmetricKey() SymmetricKey {
	var k SymmetricKey
	rand.Read(k[:]) // never fails (crypto/rand documents it)
	return k
}

// SealedOverhead is how many bytes Seal adds: a 12-byte nonce and a 16-byte tag.
const SealedOverhead = 12 + 16

// Seal encrypts plaintext under k with a random nonce, authenticating aad,
// and returns nonce || ciphertext. Use it for data encrypted once per key
// use with fresh randomness (release index, release key under epoch key).
func Seal(k *SymmetricKey, aad, plaintext []byte) []byte {
	aead := newGCM(k[:])
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	rand.Read(out)
	return aead.Seal(out, out, plaintext, aad)
}

// Open reverses Seal.
func Open(k *SymmetricKey, aad, sealed []byte) ([]byte, error) {
	aead := newGCM(k[:])
	if len(sealed) < SealedOverhead {
		return nil, fmt.Errorf("%w: %d bytes is shorter than nonce and tag", ErrDecrypt, len(sealed))
	}
	pt, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: wrong key, wrong context or altered data", ErrDecrypt)
	}
	return pt, nil
}

func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}
