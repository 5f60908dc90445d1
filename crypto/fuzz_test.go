package crypto

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func goldenEnvelopes(f *testing.F) (sig signingVector, roots rootVector) {
	f.Helper()
	for name, v := range map[string]any{"signing.json": &sig, "root.json": &roots} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		if err := jsonUnmarshal(data, v); err != nil {
			f.Fatal(err)
		}
	}
	return sig, roots
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzParseEnvelope: any accepted envelope re-encodes to the same bytes, and
// verification never panics.
func FuzzParseEnvelope(f *testing.F) {
	sig, roots := goldenEnvelopes(f)
	f.Add(mustHex(sig.Envelope))
	f.Add(mustHex(roots.V1))
	f.Add(mustHex(roots.V2))
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEnvelope(data, 0)
		if err != nil {
			return
		}
		again, err := e.Marshal()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted envelope does not re-encode to its bytes: %v", err)
		}
		k := fixedSigningKey(t, 0x42)
		id := k.Public().ID()
		_ = VerifyThreshold(e, e.PayloadType, map[KeyID]PublicKey{id: k.Public()}, Role{KeyIDs: []KeyID{id}, Threshold: 1})
	})
}

// FuzzVerifyThreshold: a mutated golden envelope verifies only if its
// payload type and payload are the signed ones.
func FuzzVerifyThreshold(f *testing.F) {
	sig, _ := goldenEnvelopes(f)
	orig := mustHex(sig.Envelope)
	f.Add(orig)
	f.Add(append(bytes.Clone(orig[:len(orig)-1]), orig[len(orig)-1]^1))
	a, b := fixedSigningKey(f, 0x42).Public(), fixedSigningKey(f, 0x43).Public()
	keys := map[KeyID]PublicKey{a.ID(): a, b.ID(): b}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEnvelope(data, 0)
		if err != nil {
			return
		}
		for th := 1; th <= 2; th++ {
			if VerifyThreshold(e, testType, keys, Role{KeyIDs: []KeyID{a.ID(), b.ID()}, Threshold: th}) == nil {
				if e.PayloadType != testType || string(e.Payload) != "golden payload" {
					t.Fatalf("forged envelope verified: %q %q", e.PayloadType, e.Payload)
				}
			}
		}
	})
}

// FuzzParseRoot: any accepted root payload re-encodes to the same bytes and
// passes the structure rules.
func FuzzParseRoot(f *testing.F) {
	_, roots := goldenEnvelopes(f)
	for _, h := range []string{roots.V1, roots.V2} {
		e, err := ParseEnvelope(mustHex(h), 0)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e.Payload)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		env := &Envelope{PayloadType: RootPayloadType, Payload: payload}
		r, err := ParseRoot(env)
		if err != nil {
			return
		}
		again, err := r.MarshalPayload()
		if err != nil || !bytes.Equal(again, payload) {
			t.Fatalf("accepted root does not re-encode to its bytes: %v", err)
		}
	})
}

// FuzzUpdateRoot: a mutated golden v2 root is accepted only if it is the
// signed one.
func FuzzUpdateRoot(f *testing.F) {
	_, roots := goldenEnvelopes(f)
	e1, _ := ParseEnvelope(mustHex(roots.V1), 0)
	r1, err := ParseRoot(e1)
	if err != nil {
		f.Fatal(err)
	}
	v2 := mustHex(roots.V2)
	e2, _ := ParseEnvelope(v2, 0)
	f.Add(v2)
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEnvelope(data, 0)
		if err != nil {
			return
		}
		if _, err := UpdateRoot(r1, e); err == nil && !bytes.Equal(e.Payload, e2.Payload) {
			t.Fatal("forged root accepted")
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	f.Add(fixedSigningKey(f, 1).Public().String())
	f.Add("meshota-pub1:")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePublicKey(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("accepted %q, which prints as %q", s, p)
		}
	})
}

func FuzzKeyIDText(f *testing.F) {
	f.Add([]byte(fixedSigningKey(f, 1).Public().ID().String()))
	f.Fuzz(func(t *testing.T, b []byte) {
		var id KeyID
		if id.UnmarshalText(b) == nil && !bytes.EqualFold([]byte(id.String()), b) {
			t.Fatalf("accepted %q, which prints as %s", b, id)
		}
	})
}

func FuzzSigningKeyText(f *testing.F) {
	f.Add("# c\n" + string(fixedSigningKey(f, 1).marshalSecretText()) + "\n")
	f.Fuzz(func(t *testing.T, s string) {
		line, err := secretLine("fuzz", s)
		if err != nil {
			return
		}
		if k, err := parseSigningKeyText(line); err == nil && string(k.marshalSecretText()) != line {
			t.Fatalf("accepted %q, which encodes as %q", line, k.marshalSecretText())
		}
	})
}

func FuzzParseDevicePublicKey(f *testing.F) {
	for _, kem := range kems {
		dk, err := GenerateDeviceKey(kem)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(dk.Public().Bytes())
	}
	f.Add([]byte{0x00, 0x20})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseDevicePublicKey(b)
		if err == nil && !bytes.Equal(p.Bytes(), b) {
			t.Fatal("accepted key does not re-encode to its bytes")
		}
		if err == nil {
			if q, err := ParseDevicePublicKeyText(p.String()); err != nil || q != p {
				t.Fatalf("text form does not round-trip: %v", err)
			}
		}
		if p, err := ParseDevicePublicKeyText(string(b)); err == nil && p.String() != string(b) {
			t.Fatalf("accepted %q, which prints as %q", b, p)
		}
	})
}

func FuzzParseDeviceKey(f *testing.F) {
	var vs []sealedKeyVector
	data, _ := os.ReadFile(filepath.Join("testdata", "sealed_key.json"))
	if err := jsonUnmarshal(data, &vs); err != nil {
		f.Fatal(err)
	}
	for _, v := range vs {
		f.Add(mustHex(v.DeviceKey))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseDeviceKey(b)
		if err != nil {
			return
		}
		again, err := k.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		k2, err := ParseDeviceKey(again)
		if err != nil || k2.Public() != k.Public() {
			t.Fatalf("re-encoded key differs: %v", err)
		}
	})
}

// FuzzOpenKey: garbage never opens (the key and context are fixed, the
// sealed bytes are the attacker's), and never panics.
func FuzzOpenKey(f *testing.F) {
	var vs []sealedKeyVector
	data, _ := os.ReadFile(filepath.Join("testdata", "sealed_key.json"))
	if err := jsonUnmarshal(data, &vs); err != nil {
		f.Fatal(err)
	}
	var dks []*DeviceKey
	for _, v := range vs {
		dk, err := ParseDeviceKey(mustHex(v.DeviceKey))
		if err != nil {
			f.Fatal(err)
		}
		dks = append(dks, dk)
		f.Add(mustHex(v.Sealed), v.Channel, v.Epoch)
	}
	f.Fuzz(func(t *testing.T, sealed []byte, channel string, epoch uint64) {
		for i, dk := range dks {
			got, err := dk.OpenKey(channel, epoch, sealed)
			if err == nil && (hex.EncodeToString(sealed) != vs[i].Sealed || channel != vs[i].Channel || epoch != vs[i].Epoch || hex.EncodeToString(got[:]) != vs[i].Key) {
				t.Fatal("opened something that was not sealed to this key and context")
			}
		}
	})
}

func FuzzOpen(f *testing.F) {
	var v aeadVector
	data, _ := os.ReadFile(filepath.Join("testdata", "aead.json"))
	if err := jsonUnmarshal(data, &v); err != nil {
		f.Fatal(err)
	}
	k := SymmetricKey(mustHex(v.Key))
	f.Add(mustHex(v.AAD), mustHex(v.Sealed))
	f.Fuzz(func(t *testing.T, aad, sealed []byte) {
		if _, err := Open(&k, aad, sealed); err == nil && (hex.EncodeToString(sealed) != v.Sealed || hex.EncodeToString(aad) != v.AAD) {
			t.Fatal("opened forged data")
		}
	})
}

func FuzzOpenChunk(f *testing.F) {
	var v chunkVector
	data, _ := os.ReadFile(filepath.Join("testdata", "chunk.json"))
	if err := jsonUnmarshal(data, &v); err != nil {
		f.Fatal(err)
	}
	k := ChunkKey(mustHex(v.Key))
	h := ChunkHash(mustHex(v.Hash))
	f.Add(mustHex(v.Ciphertext), v.Channel)
	f.Fuzz(func(t *testing.T, ct []byte, channel string) {
		if _, err := OpenChunk(nil, &k, channel, ct, h); err == nil && (hex.EncodeToString(ct) != v.Ciphertext || channel != v.Channel) {
			t.Fatal("opened a forged chunk")
		}
	})
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
