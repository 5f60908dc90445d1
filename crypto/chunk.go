package crypto

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// ChunkOverhead is how many bytes chunk encryption adds (the GCM tag).
const ChunkOverhead = 16

// ChannelSecret is the publisher's per-channel secret from which every chunk
// key of the channel is derived. It never leaves the publisher.
type ChannelSecret [32]byte

// ChunkKey is the AES-256-GCM key of one chunk. It is derived from the
// channel secret and the chunk's plaintext hash, so the same chunk has the
// same key — and the same ciphertext and CID — in every release of a channel.
type ChunkKey [32]byte

// ChunkHash is the SHA-256 of a chunk's plaintext.
type ChunkHash [32]byte

// HashChunk returns the plaintext hash used to derive a chunk's key.
func HashChunk(plaintext []byte) ChunkHash {
	return sha256.Sum256(plaintext)
}

// DeriveChunkKey returns the convergent key of the chunk whose plaintext
// hashes to h: HKDF-SHA256 with the channel secret as input key material and
// the hash in the info, so knowing a chunk's key reveals nothing about other
// chunks' keys nor the secret.
func DeriveChunkKey(secret *ChannelSecret, h ChunkHash) ChunkKey {
	info := make([]byte, 0, len(chunkKeyInfo)+len(h))
	info = append(append(info, chunkKeyInfo...), h[:]...)
	k, err := hkdf.Key(sha256.New, secret[:], nil, string(info), 32)
	if err != nil {
		panic(err) // only on an impossible length
	}
	return ChunkKey(k)
}

const chunkKeyInfo = "meshota/v1 chunk key\x00"

// chunkNonce is all zeros on purpose: a chunk key encrypts exactly one
// plaintext (the one whose hash it was derived from), so the (key, nonce)
// pair is never reused with a different message.
var chunkNonce [12]byte

func chunkAAD(channel string) []byte {
	return append([]byte("meshota/v1 chunk\x00"), channel...)
}

func newChunkAEAD(k *ChunkKey) cipher.AEAD { return newGCM(k[:]) }

// SealChunk appends to dst the encryption of plaintext under k, bound to the
// channel, and returns the extended slice. Reuse dst to avoid allocation.
func SealChunk(dst []byte, k *ChunkKey, channel string, plaintext []byte) []byte {
	return newChunkAEAD(k).Seal(dst, chunkNonce[:], plaintext, chunkAAD(channel))
}

// OpenChunk appends to dst the plaintext of ciphertext and returns it after
// checking both the AEAD tag (right key, right channel, untouched bytes) and
// that the plaintext hashes to want.
func OpenChunk(dst []byte, k *ChunkKey, channel string, ciphertext []byte, want ChunkHash) ([]byte, error) {
	out, err := newChunkAEAD(k).Open(dst, chunkNonce[:], ciphertext, chunkAAD(channel))
	if err != nil {
		return dst, fmt.Errorf("%w: chunk of %d bytes", ErrDecrypt, len(ciphertext))
	}
	if HashChunk(out[len(dst):]) != want {
		clear(out[len(dst):]) // leave no unverified plaintext behind in dst's spare capacity
		return dst, fmt.Errorf("%w: chunk plaintext does not match its hash", ErrDecrypt)
	}
	return out, nil
}
