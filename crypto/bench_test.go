package crypto

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"
)

// benchRatio times op b.N times (the benchmark's own figure), then base b.N
// times, and reports op's time over base's as metric unit.
func benchRatio(b *testing.B, unit string, op, base func()) {
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		op()
	}
	opTime := time.Since(start)
	b.StopTimer()
	start = time.Now()
	for range b.N {
		base()
	}
	baseTime := time.Since(start)
	if baseTime > 0 {
		b.ReportMetric(float64(opTime)/float64(baseTime), unit)
	}
}

// A manifest-sized payload.
var benchPayload = make([]byte, 1024)

// BenchmarkSign: Sign (PAE + Ed25519 + envelope) against a bare
// ed25519.Sign of the same payload.
func BenchmarkSign(b *testing.B) {
	k := fixedSigningKey(b, 1)
	seed := k.Seed()
	priv := ed25519.NewKeyFromSeed(seed)
	benchRatio(b, "x-ed25519",
		func() {
			e, err := Sign(testType, benchPayload, k)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.Marshal(); err != nil {
				b.Fatal(err)
			}
		},
		func() { ed25519.Sign(priv, benchPayload) })
}

// BenchmarkVerify: ParseEnvelope + VerifyThreshold of a 3-of-5 role against
// three bare ed25519.Verify calls.
func BenchmarkVerify(b *testing.B) {
	ks := newKeys(b, 5, 1)
	keys := map[KeyID]PublicKey{}
	role := Role{Threshold: 3}
	for _, k := range ks {
		keys[k.Public().ID()] = k.Public()
		role.KeyIDs = append(role.KeyIDs, k.Public().ID())
	}
	e, _ := Sign(testType, benchPayload, ks[0], ks[1], ks[2])
	data, _ := e.Marshal()
	msg := PAE(testType, benchPayload)
	raw := make([]ed25519.PublicKey, 3)
	for i := range raw {
		raw[i] = ks[i].Public().Bytes()
	}
	benchRatio(b, "x-3ed25519",
		func() {
			e, err := ParseEnvelope(data, 0)
			if err != nil {
				b.Fatal(err)
			}
			if err := VerifyThreshold(e, testType, keys, role); err != nil {
				b.Fatal(err)
			}
		},
		func() {
			for i := range 3 {
				if !ed25519.Verify(raw[i], msg, e.Signatures[i].Sig) {
					b.Fatal("bad")
				}
			}
		})
}

// BenchmarkSealKey / BenchmarkOpenKey: HPKE single-shot seal/open of an
// epoch key, against one bare X25519 ECDH.
func BenchmarkSealKey(b *testing.B) {
	for _, kem := range kems {
		b.Run(kem.String(), func(b *testing.B) {
			dk, _ := GenerateDeviceKey(kem)
			pub := dk.Public()
			key := NewSymmetricKey()
			base := x25519Baseline(b)
			benchRatio(b, "x-x25519-ecdh",
				func() {
					if _, err := SealKey(pub, "stable", 1, &key); err != nil {
						b.Fatal(err)
					}
				}, base)
		})
	}
}

func BenchmarkOpenKey(b *testing.B) {
	for _, kem := range kems {
		b.Run(kem.String(), func(b *testing.B) {
			dk, _ := GenerateDeviceKey(kem)
			key := NewSymmetricKey()
			sealed, _ := SealKey(dk.Public(), "stable", 1, &key)
			base := x25519Baseline(b)
			benchRatio(b, "x-x25519-ecdh",
				func() {
					if _, err := dk.OpenKey("stable", 1, sealed); err != nil {
						b.Fatal(err)
					}
				}, base)
		})
	}
}

func x25519Baseline(b *testing.B) func() {
	a, _ := ecdh.X25519().GenerateKey(rand.Reader)
	c, _ := ecdh.X25519().GenerateKey(rand.Reader)
	return func() {
		if _, err := a.ECDH(c.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
}

const benchChunkSize = 256 << 10

// BenchmarkChunk: the publisher's path (hash, derive key, seal) and the
// device's path (open, check hash) of a 256 KiB chunk, against one SHA-256
// pass over the same bytes.
func BenchmarkChunk(b *testing.B) {
	pt := make([]byte, benchChunkSize)
	rand.Read(pt)
	secret := testSecret(1)
	h := HashChunk(pt)
	k := DeriveChunkKey(secret, h)
	ct := SealChunk(nil, &k, "stable", pt)
	buf := make([]byte, 0, benchChunkSize+ChunkOverhead)
	shaPass := func() { sha256.Sum256(pt) }
	b.Run("seal", func(b *testing.B) {
		b.SetBytes(benchChunkSize)
		benchRatio(b, "x-sha256", func() {
			h := HashChunk(pt)
			k := DeriveChunkKey(secret, h)
			buf = SealChunk(buf[:0], &k, "stable", pt)
		}, shaPass)
	})
	b.Run("open", func(b *testing.B) {
		b.SetBytes(benchChunkSize)
		benchRatio(b, "x-sha256", func() {
			var err error
			if buf, err = OpenChunk(buf[:0], &k, "stable", ct, h); err != nil {
				b.Fatal(err)
			}
		}, shaPass)
	})
}
