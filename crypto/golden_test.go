package crypto

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// Run `go test ./crypto -run Golden -update` after an intended format
// change, and say why in the commit.
var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/")

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name string, got any) {
	t.Helper()
	path := filepath.Join("testdata", name)
	data, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, '\n')
	if *update {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, data) {
		t.Errorf("%s changed: a wire or file format changed. If intended, run with -update and document it in docs/CRYPTO.md.\ngot:\n%s", path, data)
	}
}

func loadGolden(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type signingVector struct {
	Seed       string `json:"seed"`
	PublicText string `json:"public_text"`
	KeyID      string `json:"key_id"`
	SecretText string `json:"secret_text"`
	KeyFile    string `json:"key_file"`
	PAE        string `json:"pae_hex"`
	Envelope   string `json:"envelope_hex"`
}

func TestGoldenSigning(t *testing.T) {
	k := fixedSigningKey(t, 0x42)
	other := fixedSigningKey(t, 0x43)
	env, err := Sign(testType, []byte("golden payload"), k, other)
	if err != nil {
		t.Fatal(err)
	}
	envBytes, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "k")
	if err := WriteSigningKeyFile(path, k); err != nil {
		t.Fatal(err)
	}
	file, _ := os.ReadFile(path)
	got := signingVector{
		Seed:       hex.EncodeToString(k.Seed()),
		PublicText: k.Public().String(),
		KeyID:      k.Public().ID().String(),
		SecretText: string(k.marshalSecretText()),
		KeyFile:    string(file),
		PAE:        hex.EncodeToString(PAE(env.PayloadType, env.Payload)),
		Envelope:   hex.EncodeToString(envBytes),
	}
	golden(t, "signing.json", got)

	// The decoders accept the stored bytes.
	var v signingVector
	loadGolden(t, "signing.json", &v)
	pub, err := ParsePublicKey(v.PublicText)
	if err != nil || pub.ID().String() != v.KeyID {
		t.Fatalf("stored public key: %v", err)
	}
	stored, err := ParseEnvelope(unhex(t, v.Envelope), 0)
	if err != nil {
		t.Fatal(err)
	}
	role := Role{KeyIDs: []KeyID{pub.ID(), other.Public().ID()}, Threshold: 2}
	keys := map[KeyID]PublicKey{pub.ID(): pub, other.Public().ID(): other.Public()}
	if err := VerifyThreshold(stored, testType, keys, role); err != nil {
		t.Fatalf("stored envelope: %v", err)
	}
	kf := filepath.Join(t.TempDir(), "stored")
	os.WriteFile(kf, []byte(v.KeyFile), 0o600)
	if rk, err := ReadSigningKeyFile(kf); err != nil || rk.Public() != pub {
		t.Fatalf("stored key file: %v", err)
	}
}

type rootVector struct {
	V1 string `json:"root_v1_envelope_hex"`
	V2 string `json:"root_v2_envelope_hex"`
}

func goldenRoots(t *testing.T) (*Root, *Root, []*Envelope) {
	a, b, rel := fixedSigningKey(t, 0x51), fixedSigningKey(t, 0x52), fixedSigningKey(t, 0x53)
	v1 := buildRoot(t, 1, []*SigningKey{a}, 1, []*SigningKey{rel}, 1)
	v1.Expires = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	v2 := buildRoot(t, 2, []*SigningKey{a, b}, 2, []*SigningKey{rel}, 1)
	v2.Expires = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	return v1, v2, []*Envelope{signRoot(t, v1, a), signRoot(t, v2, a, b)}
}

func TestGoldenRoot(t *testing.T) {
	_, want2, envs := goldenRoots(t)
	var got rootVector
	for i, e := range envs {
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		*[]*string{&got.V1, &got.V2}[i] = hex.EncodeToString(b)
	}
	golden(t, "root.json", got)

	var v rootVector
	loadGolden(t, "root.json", &v)
	e1, err := ParseEnvelope(unhex(t, v.V1), MaxRootDocBytes)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := ParseEnvelope(unhex(t, v.V2), MaxRootDocBytes)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := VerifyInitialRoot(e1, testNow)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := WalkRoots(r1, []*Envelope{e2}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r2, want2) {
		t.Fatalf("stored root v2 decodes to %+v, want %+v", r2, want2)
	}
}

type sealedKeyVector struct {
	KEM        string `json:"kem"`
	DeviceKey  string `json:"device_key_hex"`
	PublicText string `json:"public_text"`
	Channel    string `json:"channel"`
	Epoch      uint64 `json:"epoch"`
	Key        string `json:"key_hex"`
	Sealed     string `json:"sealed_hex"`
}

// HPKE sealing is randomized: the vector pins the open side. A stored
// sealed key must open, from the stored private key bytes, to the stored
// key; the public key forms derived from the private key are compared.
func TestGoldenSealedKey(t *testing.T) {
	if *update {
		var out []sealedKeyVector
		for i, kem := range kems {
			seed := append([]byte{byte(kem >> 8), byte(kem)}, bytes.Repeat([]byte{0x60 + byte(i)}, 32)...)
			dk, err := ParseDeviceKey(seed)
			if err != nil {
				t.Fatal(err)
			}
			var key SymmetricKey
			copy(key[:], bytes.Repeat([]byte{0x70 + byte(i)}, 32))
			sealed, err := SealKey(dk.Public(), "stable", 3, &key)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := dk.MarshalBinary()
			out = append(out, sealedKeyVector{KEM: kem.String(), DeviceKey: hex.EncodeToString(b), PublicText: dk.Public().String(),
				Channel: "stable", Epoch: 3, Key: hex.EncodeToString(key[:]), Sealed: hex.EncodeToString(sealed)})
		}
		golden(t, "sealed_key.json", out)
	}
	var vs []sealedKeyVector
	loadGolden(t, "sealed_key.json", &vs)
	if len(vs) != len(kems) {
		t.Fatalf("%d vectors, want one per KEM", len(vs))
	}
	for _, v := range vs {
		t.Run(v.KEM, func(t *testing.T) {
			kem, err := ParseKEM(v.KEM)
			if err != nil {
				t.Fatal(err)
			}
			dk, err := ParseDeviceKey(unhex(t, v.DeviceKey))
			if err != nil || dk.KEM() != kem {
				t.Fatalf("device key: %v", err)
			}
			if dk.Public().String() != v.PublicText {
				t.Fatalf("public key %s, want %s", dk.Public(), v.PublicText)
			}
			got, err := dk.OpenKey(v.Channel, v.Epoch, unhex(t, v.Sealed))
			if err != nil || hex.EncodeToString(got[:]) != v.Key {
				t.Fatalf("open: %x, %v", got, err)
			}
			if _, err := dk.OpenKey(v.Channel, v.Epoch+1, unhex(t, v.Sealed)); err == nil {
				t.Fatal("stored vector opens under another epoch")
			}
		})
	}
}

type chunkVector struct {
	Secret     string `json:"channel_secret_hex"`
	Channel    string `json:"channel"`
	Plaintext  string `json:"plaintext_hex"`
	Hash       string `json:"hash_hex"`
	Key        string `json:"key_hex"`
	Ciphertext string `json:"ciphertext_hex"`
}

type aeadVector struct {
	Key       string `json:"key_hex"`
	AAD       string `json:"aad_hex"`
	Plaintext string `json:"plaintext_hex"`
	Sealed    string `json:"sealed_hex"`
}

func TestGoldenChunk(t *testing.T) {
	pt := []byte("a chunk of a release, pinned so that its key, ciphertext and CID never change silently")
	k, h, ct := sealTestChunk(testSecret(0x80), "stable", pt)
	golden(t, "chunk.json", chunkVector{
		Secret: hex.EncodeToString(testSecret(0x80)[:]), Channel: "stable", Plaintext: hex.EncodeToString(pt),
		Hash: hex.EncodeToString(h[:]), Key: hex.EncodeToString(k[:]), Ciphertext: hex.EncodeToString(ct),
	})
	var v chunkVector
	loadGolden(t, "chunk.json", &v)
	ck := ChunkKey(unhex(t, v.Key))
	got, err := OpenChunk(nil, &ck, v.Channel, unhex(t, v.Ciphertext), ChunkHash(unhex(t, v.Hash)))
	if err != nil || hex.EncodeToString(got) != v.Plaintext {
		t.Fatalf("stored chunk: %v", err)
	}
}

// Seal is randomized: the vector pins the open side.
func TestGoldenSeal(t *testing.T) {
	if *update {
		var k SymmetricKey
		copy(k[:], bytes.Repeat([]byte{0x90}, 32))
		aad, pt := []byte("meshota/v1 test\x00stable"), []byte("release key or index")
		golden(t, "aead.json", aeadVector{Key: hex.EncodeToString(k[:]), AAD: hex.EncodeToString(aad),
			Plaintext: hex.EncodeToString(pt), Sealed: hex.EncodeToString(Seal(&k, aad, pt))})
	}
	var v aeadVector
	loadGolden(t, "aead.json", &v)
	k := SymmetricKey(unhex(t, v.Key))
	got, err := Open(&k, unhex(t, v.AAD), unhex(t, v.Sealed))
	if err != nil || hex.EncodeToString(got) != v.Plaintext {
		t.Fatalf("stored sealed data: %v", err)
	}
}
