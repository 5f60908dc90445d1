package crypto

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// b64 is strict: non-zero trailing bits are refused, so each key has exactly
// one text form.
var b64 = base64.RawURLEncoding.Strict()

// decodeB64 decodes unpadded base64url and, unlike encoding/base64, also
// refuses line breaks inside the text.
func decodeB64(s string) ([]byte, error) {
	if i := strings.IndexFunc(s, func(r rune) bool {
		return !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_')
	}); i >= 0 {
		return nil, fmt.Errorf("character %q at %d is not base64url", s[i], i)
	}
	return b64.DecodeString(s)
}

// Text prefixes of signing keys. The trailing digit is the format version.
const (
	PublicKeyPrefix  = "meshota-pub1:"
	SigningKeyPrefix = "meshota-sec1:"
)

// keyIDPrefix domain-separates key IDs from every other SHA-256 in meshota.
const keyIDPrefix = "meshota/v1 signing key id\x00"

// KeyID names a publisher or device signing key: SHA-256 over a
// domain-separation prefix and the 32-byte Ed25519 public key.
type KeyID [32]byte

// String returns the lowercase hex form.
func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText returns the lowercase hex form.
func (id KeyID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses the hex form (64 hex digits).
func (id *KeyID) UnmarshalText(text []byte) error {
	if len(text) != 2*len(id) {
		return fmt.Errorf("%w: key ID must be %d hex digits, got %d", ErrMalformedKey, 2*len(id), len(text))
	}
	var tmp KeyID
	if _, err := hex.Decode(tmp[:], text); err != nil {
		return fmt.Errorf("%w: key ID: %v", ErrMalformedKey, err)
	}
	*id = tmp
	return nil
}

// PublicKey is an Ed25519 public key. The zero value is not a valid key.
// It encodes in CBOR as a 32-byte byte string.
type PublicKey struct {
	k [ed25519.PublicKeySize]byte
}

// PublicKeyFromBytes returns the public key of the 32 raw Ed25519 bytes.
func PublicKeyFromBytes(b []byte) (PublicKey, error) {
	var p PublicKey
	if len(b) != ed25519.PublicKeySize {
		return p, fmt.Errorf("%w: public key of %d bytes, want %d", ErrMalformedKey, len(b), ed25519.PublicKeySize)
	}
	copy(p.k[:], b)
	return p, nil
}

// ParsePublicKey parses the text form "meshota-pub1:<base64url>".
func ParsePublicKey(s string) (PublicKey, error) {
	rest, ok := strings.CutPrefix(s, PublicKeyPrefix)
	if !ok {
		return PublicKey{}, fmt.Errorf("%w: public key must start with %q", ErrMalformedKey, PublicKeyPrefix)
	}
	b, err := decodeB64(rest)
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: public key: %v", ErrMalformedKey, err)
	}
	return PublicKeyFromBytes(b)
}

// Bytes returns the 32 raw Ed25519 bytes.
func (p PublicKey) Bytes() []byte { return append([]byte(nil), p.k[:]...) }

// ID returns the key's ID.
func (p PublicKey) ID() KeyID {
	h := sha256.New()
	h.Write([]byte(keyIDPrefix))
	h.Write(p.k[:])
	return KeyID(h.Sum(nil))
}

// IsZero reports whether p is the zero value (no key).
func (p PublicKey) IsZero() bool { return p == PublicKey{} }

// String returns the text form.
func (p PublicKey) String() string { return PublicKeyPrefix + b64.EncodeToString(p.k[:]) }

// MarshalText returns the text form.
func (p PublicKey) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses the text form.
func (p *PublicKey) UnmarshalText(text []byte) error {
	k, err := ParsePublicKey(string(text))
	if err != nil {
		return err
	}
	*p = k
	return nil
}

// MarshalCBOR encodes the key as a 32-byte byte string.
func (p PublicKey) MarshalCBOR() ([]byte, error) { return cbor.Marshal(p.k[:]) }

// UnmarshalCBOR decodes a 32-byte byte string.
func (p *PublicKey) UnmarshalCBOR(data []byte) error {
	var b []byte
	if err := cbor.Unmarshal(data, &b); err != nil {
		return fmt.Errorf("%w: public key: %v", ErrMalformedKey, err)
	}
	k, err := PublicKeyFromBytes(b)
	if err != nil {
		return err
	}
	*p = k
	return nil
}

func (p PublicKey) verify(msg, sig []byte) bool {
	return len(sig) == ed25519.SignatureSize && ed25519.Verify(p.k[:], msg, sig)
}

// SigningKey is an Ed25519 private key. It is not comparable with ==, and
// its String, GoString, Format and LogValue show only the public key ID.
type SigningKey struct {
	_    [0]func() // not comparable
	priv ed25519.PrivateKey
	pub  PublicKey
}

// GenerateSigningKey returns a fresh random signing key.
func GenerateSigningKey() (*SigningKey, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("generating a signing key: %w", err)
	}
	return signingKeyFromSeed(priv.Seed())
}

// SigningKeyFromSeed returns the signing key of a 32-byte Ed25519 seed
// (RFC 8032 private key).
func SigningKeyFromSeed(seed []byte) (*SigningKey, error) { return signingKeyFromSeed(seed) }

func signingKeyFromSeed(seed []byte) (*SigningKey, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: signing key seed of %d bytes, want %d", ErrMalformedKey, len(seed), ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	k := &SigningKey{priv: priv}
	copy(k.pub.k[:], priv.Public().(ed25519.PublicKey))
	return k, nil
}

// Public returns the public key.
func (k *SigningKey) Public() PublicKey { return k.pub }

// Seed returns the 32-byte Ed25519 seed. Handle it as the secret it is.
func (k *SigningKey) Seed() []byte { return k.priv.Seed() }

func (k *SigningKey) sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// String shows the key ID only.
// It has a value receiver so that printing a dereferenced key is redacted
// too.
func (k SigningKey) String() string {
	return "SigningKey(" + k.pub.ID().String() + ", secret redacted)"
}

// GoString is String: %#v never prints the secret either.
func (k SigningKey) GoString() string { return k.String() }

// Format prints String for every verb.
func (k SigningKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue shows the key ID only.
func (k SigningKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// marshalSecretText returns the secret text form "meshota-sec1:<base64url seed>",
// as stored in key files.
func (k *SigningKey) marshalSecretText() []byte {
	return []byte(SigningKeyPrefix + b64.EncodeToString(k.priv.Seed()))
}

func parseSigningKeyText(s string) (*SigningKey, error) {
	rest, ok := strings.CutPrefix(s, SigningKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: signing key must start with %q", ErrMalformedKey, SigningKeyPrefix)
	}
	seed, err := decodeB64(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: signing key: %v", ErrMalformedKey, err)
	}
	return signingKeyFromSeed(seed)
}

// WriteSigningKeyFile writes k to a new file at path with mode 0600. It
// refuses to overwrite an existing file (ErrKeyFileExists).
func WriteSigningKeyFile(path string, k *SigningKey) error {
	comment := "# meshota signing key: keep secret. Public key: " + k.pub.String() + "\n"
	return writeSecretFile(path, []byte(comment), k.marshalSecretText())
}

// ReadSigningKeyFile reads a key file written by WriteSigningKeyFile. It
// refuses a file that group or others may read or write
// (ErrKeyFilePermissions).
func ReadSigningKeyFile(path string) (*SigningKey, error) {
	line, err := readSecretFile(path)
	if err != nil {
		return nil, err
	}
	k, err := parseSigningKeyText(line)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}
