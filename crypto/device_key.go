package crypto

import (
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// KEM names an HPKE key encapsulation mechanism by its RFC 9180 /
// draft-ietf-hpke-pq identifier.
type KEM uint16

// The KEMs a device key may use.
const (
	// KEMX25519 is DHKEM(X25519, HKDF-SHA256): small keys (32 bytes) and
	// sealed keys (80 bytes), for very small devices. Not post-quantum.
	KEMX25519 KEM = 0x0020
	// KEMMLKEM768X25519 is the hybrid ML-KEM-768 + X25519 (X-Wing): secure
	// if either component is. Public key 1216 bytes, sealed key 1168 bytes.
	KEMMLKEM768X25519 KEM = 0x647a
	// DefaultKEM is what devices use unless told otherwise.
	DefaultKEM = KEMMLKEM768X25519
)

// String returns the KEM's name as the CLI spells it.
func (k KEM) String() string {
	switch k {
	case KEMX25519:
		return "x25519"
	case KEMMLKEM768X25519:
		return "mlkem768x25519"
	}
	return fmt.Sprintf("KEM(0x%04x)", uint16(k))
}

// ParseKEM returns the KEM named name ("x25519" or "mlkem768x25519").
func ParseKEM(name string) (KEM, error) {
	for _, k := range []KEM{KEMX25519, KEMMLKEM768X25519} {
		if name == k.String() {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownKEM, name)
}

func (k KEM) hpke() (hpke.KEM, error) {
	switch k {
	case KEMX25519:
		return hpke.DHKEM(ecdh.X25519()), nil
	case KEMMLKEM768X25519:
		return hpke.MLKEM768X25519(), nil
	}
	return nil, fmt.Errorf("%w: 0x%04x", ErrUnknownKEM, uint16(k))
}

// The rest of the HPKE suite is fixed.
var (
	hpkeKDF  = hpke.HKDFSHA256()
	hpkeAEAD = hpke.AES256GCM()
)

// Text prefixes of device keys.
const (
	DevicePublicKeyPrefix = "meshota-devpub1:"
	DeviceKeyPrefix       = "meshota-devsec1:"
)

// DevicePublicKey is a device's HPKE public key and its KEM. It is a
// comparable value type. Its binary form (Bytes) is the KEM identifier as
// 2 bytes big-endian followed by the KEM's serialized public key; its text
// form is DevicePublicKeyPrefix + base64url(Bytes()); in CBOR it is the
// binary form as a byte string.
type DevicePublicKey struct {
	kem KEM
	key string // serialized HPKE public key
}

// ParseDevicePublicKey parses the binary form.
func ParseDevicePublicKey(b []byte) (DevicePublicKey, error) {
	if len(b) < 2 {
		return DevicePublicKey{}, fmt.Errorf("%w: device public key of %d bytes", ErrMalformedKey, len(b))
	}
	kem := KEM(binary.BigEndian.Uint16(b))
	hk, err := kem.hpke()
	if err != nil {
		return DevicePublicKey{}, err
	}
	if _, err := hk.NewPublicKey(b[2:]); err != nil {
		return DevicePublicKey{}, fmt.Errorf("%w: %s device public key: %v", ErrMalformedKey, kem, err)
	}
	return DevicePublicKey{kem: kem, key: string(b[2:])}, nil
}

// ParseDevicePublicKeyText parses the text form.
func ParseDevicePublicKeyText(s string) (DevicePublicKey, error) {
	rest, ok := strings.CutPrefix(s, DevicePublicKeyPrefix)
	if !ok {
		return DevicePublicKey{}, fmt.Errorf("%w: device public key must start with %q", ErrMalformedKey, DevicePublicKeyPrefix)
	}
	b, err := decodeB64(rest)
	if err != nil {
		return DevicePublicKey{}, fmt.Errorf("%w: device public key: %v", ErrMalformedKey, err)
	}
	return ParseDevicePublicKey(b)
}

// KEM returns the key's KEM.
func (p DevicePublicKey) KEM() KEM { return p.kem }

// IsZero reports whether p is the zero value (no key).
func (p DevicePublicKey) IsZero() bool { return p.key == "" }

// Bytes returns the binary form.
func (p DevicePublicKey) Bytes() []byte {
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(p.key)), uint16(p.kem))
	return append(b, p.key...)
}

// String returns the text form.
func (p DevicePublicKey) String() string {
	return DevicePublicKeyPrefix + b64.EncodeToString(p.Bytes())
}

// MarshalText returns the text form.
func (p DevicePublicKey) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses the text form.
func (p *DevicePublicKey) UnmarshalText(text []byte) error {
	k, err := ParseDevicePublicKeyText(string(text))
	if err != nil {
		return err
	}
	*p = k
	return nil
}

// MarshalCBOR encodes the binary form as a byte string.
func (p DevicePublicKey) MarshalCBOR() ([]byte, error) { return cbor.Marshal(p.Bytes()) }

// UnmarshalCBOR decodes the binary form from a byte string.
func (p *DevicePublicKey) UnmarshalCBOR(data []byte) error {
	var b []byte
	if err := cbor.Unmarshal(data, &b); err != nil {
		return fmt.Errorf("%w: device public key: %v", ErrMalformedKey, err)
	}
	k, err := ParseDevicePublicKey(b)
	if err != nil {
		return err
	}
	*p = k
	return nil
}

// DeviceKey is a device's HPKE private key. It is not comparable with ==,
// and its String, GoString, Format and LogValue show only the KEM.
type DeviceKey struct {
	_    [0]func() // not comparable
	kem  KEM
	priv hpke.PrivateKey
	pub  DevicePublicKey
}

// GenerateDeviceKey returns a fresh device key for kem.
func GenerateDeviceKey(kem KEM) (*DeviceKey, error) {
	hk, err := kem.hpke()
	if err != nil {
		return nil, err
	}
	priv, err := hk.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generating a %s device key: %w", kem, err)
	}
	return newDeviceKey(kem, priv), nil
}

func newDeviceKey(kem KEM, priv hpke.PrivateKey) *DeviceKey {
	return &DeviceKey{kem: kem, priv: priv, pub: DevicePublicKey{kem: kem, key: string(priv.PublicKey().Bytes())}}
}

// ParseDeviceKey parses the binary form written by MarshalBinary: the KEM
// identifier (2 bytes big-endian) then the KEM's serialized private key
// (32 bytes for both KEMs: an X25519 scalar, or the X-Wing seed).
func ParseDeviceKey(b []byte) (*DeviceKey, error) {
	if len(b) != 2+32 {
		return nil, fmt.Errorf("%w: device key of %d bytes, want 34", ErrMalformedKey, len(b))
	}
	kem := KEM(binary.BigEndian.Uint16(b))
	hk, err := kem.hpke()
	if err != nil {
		return nil, err
	}
	priv, err := hk.NewPrivateKey(b[2:])
	if err != nil {
		return nil, fmt.Errorf("%w: %s device key: %v", ErrMalformedKey, kem, err)
	}
	return newDeviceKey(kem, priv), nil
}

// MarshalBinary returns the secret binary form (see ParseDeviceKey).
// Handle it as the secret it is.
func (k *DeviceKey) MarshalBinary() ([]byte, error) {
	sk, err := k.priv.Bytes()
	if err != nil {
		return nil, fmt.Errorf("serializing the device key: %w", err)
	}
	return append(binary.BigEndian.AppendUint16(nil, uint16(k.kem)), sk...), nil
}

// Public returns the public key.
func (k *DeviceKey) Public() DevicePublicKey { return k.pub }

// KEM returns the key's KEM.
func (k *DeviceKey) KEM() KEM { return k.kem }

// String shows the KEM only. It has a value receiver so that printing a
// dereferenced key is redacted too.
func (k DeviceKey) String() string { return "DeviceKey(" + k.kem.String() + ", secret redacted)" }

// GoString is String.
func (k DeviceKey) GoString() string { return k.String() }

// Format prints String for every verb.
func (k DeviceKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue shows the KEM only.
func (k DeviceKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// WriteDeviceKeyFile writes k to a new file at path with mode 0600. It
// refuses to overwrite an existing file (ErrKeyFileExists).
func WriteDeviceKeyFile(path string, k *DeviceKey) error {
	b, err := k.MarshalBinary()
	if err != nil {
		return err
	}
	comment := "# meshota device key (HPKE " + k.kem.String() + "): keep secret. Public key:\n# " + k.pub.String() + "\n"
	return writeSecretFile(path, []byte(comment), []byte(DeviceKeyPrefix+b64.EncodeToString(b)))
}

// ReadDeviceKeyFile reads a key file written by WriteDeviceKeyFile, with
// the same permission rule as ReadSigningKeyFile.
func ReadDeviceKeyFile(path string) (*DeviceKey, error) {
	line, err := readSecretFile(path)
	if err != nil {
		return nil, err
	}
	rest, ok := strings.CutPrefix(line, DeviceKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("%s: %w: device key must start with %q", path, ErrMalformedKey, DeviceKeyPrefix)
	}
	b, err := decodeB64(rest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrMalformedKey, err)
	}
	k, err := ParseDeviceKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}
