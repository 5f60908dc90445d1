package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshota/meshota/protocol/codec"
)

var kems = []KEM{KEMX25519, KEMMLKEM768X25519}

func TestKEMNames(t *testing.T) {
	for _, k := range kems {
		got, err := ParseKEM(k.String())
		if err != nil || got != k {
			t.Fatalf("ParseKEM(%q) = %v, %v", k, got, err)
		}
	}
	if _, err := ParseKEM("p256"); !errors.Is(err, ErrUnknownKEM) {
		t.Fatalf("ParseKEM(p256): %v", err)
	}
	if _, err := GenerateDeviceKey(KEM(0x0010)); !errors.Is(err, ErrUnknownKEM) {
		t.Fatalf("GenerateDeviceKey(P-256): %v", err)
	}
}

func TestDevicePublicKeyForms(t *testing.T) {
	for _, kem := range kems {
		t.Run(kem.String(), func(t *testing.T) {
			dk, err := GenerateDeviceKey(kem)
			if err != nil {
				t.Fatal(err)
			}
			pub := dk.Public()
			if pub.KEM() != kem || dk.KEM() != kem {
				t.Fatalf("KEM %v", pub.KEM())
			}
			wantLen := map[KEM]int{KEMX25519: 2 + 32, KEMMLKEM768X25519: 2 + 1216}[kem]
			if len(pub.Bytes()) != wantLen {
				t.Fatalf("%d bytes, want %d", len(pub.Bytes()), wantLen)
			}
			got, err := ParseDevicePublicKey(pub.Bytes())
			if err != nil || got != pub {
				t.Fatalf("binary round trip: %v", err)
			}
			text, _ := pub.MarshalText()
			var u DevicePublicKey
			if err := u.UnmarshalText(text); err != nil || u != pub {
				t.Fatalf("text round trip: %v", err)
			}
			c, err := codec.Marshal(pub)
			if err != nil {
				t.Fatal(err)
			}
			var cu DevicePublicKey
			if err := codec.Unmarshal(c, &cu, codec.Limits{}); err != nil || cu != pub {
				t.Fatalf("CBOR round trip: %v", err)
			}
			// Another KEM's identifier in front of the same bytes fails.
			b := pub.Bytes()
			b[0], b[1] = 0x00, 0x21 // X448
			if _, err := ParseDevicePublicKey(b); !errors.Is(err, ErrUnknownKEM) {
				t.Fatalf("unknown KEM id: %v", err)
			}
			for _, bad := range [][]byte{nil, {0x00}, pub.Bytes()[:len(pub.Bytes())-1], append(pub.Bytes(), 0)} {
				if _, err := ParseDevicePublicKey(bad); !errors.Is(err, ErrMalformedKey) {
					t.Errorf("ParseDevicePublicKey(%d bytes) = %v", len(bad), err)
				}
			}
			if _, err := ParseDevicePublicKeyText(strings.TrimPrefix(string(text), DevicePublicKeyPrefix)); !errors.Is(err, ErrMalformedKey) {
				t.Errorf("text without prefix: %v", err)
			}
		})
	}
}

func TestDeviceKeyBinaryAndFile(t *testing.T) {
	dir := t.TempDir()
	for _, kem := range kems {
		t.Run(kem.String(), func(t *testing.T) {
			dk, err := GenerateDeviceKey(kem)
			if err != nil {
				t.Fatal(err)
			}
			b, err := dk.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseDeviceKey(b)
			if err != nil || got.Public() != dk.Public() {
				t.Fatalf("binary round trip: %v", err)
			}
			path := filepath.Join(dir, kem.String()+".key")
			if err := WriteDeviceKeyFile(path, dk); err != nil {
				t.Fatal(err)
			}
			if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
				t.Fatalf("mode %04o", st.Mode().Perm())
			}
			if err := WriteDeviceKeyFile(path, dk); !errors.Is(err, ErrKeyFileExists) {
				t.Fatalf("overwrite: %v", err)
			}
			rk, err := ReadDeviceKeyFile(path)
			if err != nil || rk.Public() != dk.Public() {
				t.Fatalf("file round trip: %v", err)
			}
			os.Chmod(path, 0o644)
			if _, err := ReadDeviceKeyFile(path); !errors.Is(err, ErrKeyFilePermissions) {
				t.Fatalf("mode 0644: %v", err)
			}
			// Redaction.
			secret := b64.EncodeToString(b)
			raw := fmt.Sprintf("%x", b[2:10])
			for _, s := range []string{fmt.Sprint(dk), fmt.Sprintf("%#v", dk), fmt.Sprintf("%+v", *dk), fmt.Sprintf("%x", dk)} {
				if strings.Contains(s, secret) || strings.Contains(s, raw) {
					t.Errorf("secret revealed in %q", s)
				}
			}
		})
	}
	sk := fixedSigningKey(t, 1)
	path := filepath.Join(dir, "signing-as-device")
	if err := WriteSigningKeyFile(path, sk); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadDeviceKeyFile(path); !errors.Is(err, ErrMalformedKey) {
		t.Fatalf("signing key read as device key: %v", err)
	}
	for _, bad := range [][]byte{nil, make([]byte, 33), make([]byte, 35), append([]byte{0x00, 0x10}, make([]byte, 32)...)} {
		if _, err := ParseDeviceKey(bad); err == nil {
			t.Errorf("ParseDeviceKey(%x) accepted", bad)
		}
	}
}

func TestSealOpenKey(t *testing.T) {
	for _, kem := range kems {
		t.Run(kem.String(), func(t *testing.T) {
			dk, _ := GenerateDeviceKey(kem)
			other, _ := GenerateDeviceKey(kem)
			key := NewSymmetricKey()
			sealed, err := SealKey(dk.Public(), "stable", 7, &key)
			if err != nil {
				t.Fatal(err)
			}
			if len(sealed) != SealedKeySize(kem) {
				t.Fatalf("%d bytes, want %d", len(sealed), SealedKeySize(kem))
			}
			again, _ := SealKey(dk.Public(), "stable", 7, &key)
			if bytes.Equal(again, sealed) {
				t.Fatal("sealing is not randomized")
			}
			got, err := dk.OpenKey("stable", 7, sealed)
			if err != nil || got != key {
				t.Fatalf("open: %v", err)
			}
			flip := func(i int) []byte {
				b := bytes.Clone(sealed)
				b[i] ^= 0x01
				return b
			}
			tests := []struct {
				name    string
				k       *DeviceKey
				channel string
				epoch   uint64
				sealed  []byte
			}{
				{"wrong device key", other, "stable", 7, sealed},
				{"wrong channel", dk, "beta", 7, sealed},
				{"channel prefix", dk, "stabl", 7, sealed},
				{"wrong epoch", dk, "stable", 8, sealed},
				{"tampered encapsulation", dk, "stable", 7, flip(0)},
				{"tampered ciphertext", dk, "stable", 7, flip(len(sealed) - 20)},
				{"tampered tag", dk, "stable", 7, flip(len(sealed) - 1)},
				{"truncated", dk, "stable", 7, sealed[:len(sealed)-1]},
				{"empty", dk, "stable", 7, nil},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					if _, err := tc.k.OpenKey(tc.channel, tc.epoch, tc.sealed); !errors.Is(err, ErrDecrypt) {
						t.Fatalf("got %v, want ErrDecrypt", err)
					}
				})
			}
		})
	}
	// A key sealed to an X25519 device does not open with the hybrid KEM.
	x, _ := GenerateDeviceKey(KEMX25519)
	h, _ := GenerateDeviceKey(KEMMLKEM768X25519)
	key := NewSymmetricKey()
	sealed, _ := SealKey(x.Public(), "c", 1, &key)
	if _, err := h.OpenKey("c", 1, sealed); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("cross-KEM open: %v", err)
	}
	if _, err := SealKey(DevicePublicKey{}, "c", 1, &key); err == nil {
		t.Fatal("sealing to the zero public key succeeded")
	}
}
