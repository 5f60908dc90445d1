package crypto

import (
	"bytes"
	"errors"
	"testing"
)

func testSecret(b byte) *ChannelSecret {
	var s ChannelSecret
	for i := range s {
		s[i] = b
	}
	return &s
}

func sealTestChunk(secret *ChannelSecret, channel string, pt []byte) (ChunkKey, ChunkHash, []byte) {
	h := HashChunk(pt)
	k := DeriveChunkKey(secret, h)
	return k, h, SealChunk(nil, &k, channel, pt)
}

func TestChunkConvergence(t *testing.T) {
	pt := bytes.Repeat([]byte("meshota chunk "), 1000)
	k1, h1, c1 := sealTestChunk(testSecret(1), "stable", pt)
	k2, h2, c2 := sealTestChunk(testSecret(1), "stable", bytes.Clone(pt))
	if k1 != k2 || h1 != h2 || !bytes.Equal(c1, c2) {
		t.Fatal("same plaintext, secret and channel gave different keys or ciphertexts")
	}
	if len(c1) != len(pt)+ChunkOverhead {
		t.Fatalf("ciphertext %d bytes, want %d", len(c1), len(pt)+ChunkOverhead)
	}
	k3, _, c3 := sealTestChunk(testSecret(2), "stable", pt)
	if k3 == k1 || bytes.Equal(c3, c1) {
		t.Fatal("another channel secret gave the same key or ciphertext")
	}
	_, _, c4 := sealTestChunk(testSecret(1), "beta", pt)
	if !bytes.Equal(c4[:len(pt)], c1[:len(pt)]) {
		// Same key and nonce: the keystream is equal; only the tag depends
		// on the channel (the AAD).
		t.Fatal("channel AAD changed the keystream")
	}
	if bytes.Equal(c4, c1) {
		t.Fatal("channel is not authenticated")
	}
	other := append(bytes.Clone(pt[:len(pt)-1]), 'X')
	k5, _, _ := sealTestChunk(testSecret(1), "stable", other)
	if k5 == k1 {
		t.Fatal("different chunks share a key")
	}
	// Keys differ from the secret and from the hash.
	if [32]byte(k1) == [32]byte(*testSecret(1)) || [32]byte(k1) == [32]byte(h1) {
		t.Fatal("chunk key equals an input")
	}
}

func TestOpenChunk(t *testing.T) {
	pt := []byte("the chunk's plaintext, long enough to matter")
	k, h, ct := sealTestChunk(testSecret(1), "stable", pt)
	got, err := OpenChunk(nil, &k, "stable", ct, h)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open: %v", err)
	}
	// Appends to dst.
	prefix := []byte("prefix")
	got, err = OpenChunk(bytes.Clone(prefix), &k, "stable", ct, h)
	if err != nil || !bytes.Equal(got, append(bytes.Clone(prefix), pt...)) {
		t.Fatalf("open into dst: %v", err)
	}
	wrongKey := DeriveChunkKey(testSecret(2), h)
	flip := func(i int) []byte {
		b := bytes.Clone(ct)
		b[i] ^= 0x80
		return b
	}
	// A chunk whose key and ciphertext are consistent but whose hash is not
	// the one the index names.
	otherPT := []byte("another chunk")
	ok2, _, oct := sealTestChunk(testSecret(1), "stable", otherPT)
	tests := []struct {
		name    string
		k       ChunkKey
		channel string
		ct      []byte
		want    ChunkHash
	}{
		{"wrong channel", k, "beta", ct, h},
		{"empty channel", k, "", ct, h},
		{"wrong key", wrongKey, "stable", ct, h},
		{"tampered first byte", k, "stable", flip(0), h},
		{"tampered tag", k, "stable", flip(len(ct) - 1), h},
		{"truncated", k, "stable", ct[:len(ct)-1], h},
		{"tag only", k, "stable", ct[len(ct)-ChunkOverhead:], h},
		{"empty", k, "stable", nil, h},
		{"hash mismatch", ok2, "stable", oct, h},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]byte, 3, 4096)
			copy(dst, "abc")
			got, err := OpenChunk(dst, &tc.k, tc.channel, tc.ct, tc.want)
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("got %v, want ErrDecrypt", err)
			}
			if string(got) != "abc" {
				t.Fatalf("dst changed to %q", got)
			}
			if bytes.Contains(dst[:cap(dst)], otherPT) || bytes.Contains(dst[:cap(dst)], pt[:16]) {
				t.Fatal("unverified plaintext left in dst's spare capacity")
			}
		})
	}
	// Empty chunk: valid.
	ke, he, ce := sealTestChunk(testSecret(1), "stable", nil)
	if got, err := OpenChunk(nil, &ke, "stable", ce, he); err != nil || len(got) != 0 {
		t.Fatalf("empty chunk: %v", err)
	}
}

func TestSealOpen(t *testing.T) {
	k, other := NewSymmetricKey(), NewSymmetricKey()
	if k == other {
		t.Fatal("NewSymmetricKey repeats")
	}
	pt := []byte("release index")
	aad := []byte("meshota/v1 index\x00stable")
	s1, s2 := Seal(&k, aad, pt), Seal(&k, aad, pt)
	if bytes.Equal(s1, s2) {
		t.Fatal("Seal is not randomized")
	}
	if len(s1) != len(pt)+SealedOverhead {
		t.Fatalf("%d bytes, want %d", len(s1), len(pt)+SealedOverhead)
	}
	got, err := Open(&k, aad, s1)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open: %v", err)
	}
	flip := bytes.Clone(s1)
	flip[len(flip)/2] ^= 1
	tests := []struct {
		name   string
		k      SymmetricKey
		aad    []byte
		sealed []byte
	}{
		{"wrong key", other, aad, s1},
		{"wrong aad", k, []byte("meshota/v1 index\x00beta"), s1},
		{"no aad", k, nil, s1},
		{"tampered", k, aad, flip},
		{"short", k, aad, s1[:SealedOverhead-1]},
		{"empty", k, aad, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Open(&tc.k, tc.aad, tc.sealed); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("got %v, want ErrDecrypt", err)
			}
		})
	}
}
