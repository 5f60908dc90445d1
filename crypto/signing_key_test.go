package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/meshota/meshota/protocol/codec"
)

func TestPublicKeyText(t *testing.T) {
	k := fixedSigningKey(t, 1)
	pub := k.Public()
	text, err := pub.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(text), PublicKeyPrefix) {
		t.Fatalf("text %q lacks prefix", text)
	}
	got, err := ParsePublicKey(string(text))
	if err != nil || got != pub {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	var u PublicKey
	if err := u.UnmarshalText(text); err != nil || u != pub {
		t.Fatalf("UnmarshalText: %v", err)
	}
	other := fixedSigningKey(t, 2).Public()
	if other.ID() == pub.ID() {
		t.Fatal("distinct keys share an ID")
	}
	for _, bad := range []string{
		"", "meshota-pub1:", string(text[:len(text)-1]), string(text) + "AA",
		strings.Replace(string(text), "pub1", "pub2", 1), strings.TrimPrefix(string(text), PublicKeyPrefix),
		string(text) + "=", PublicKeyPrefix + "!!!!",
	} {
		if _, err := ParsePublicKey(bad); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("ParsePublicKey(%q) = %v, want ErrMalformedKey", bad, err)
		}
	}
}

func TestPublicKeyCBOR(t *testing.T) {
	pub := fixedSigningKey(t, 1).Public()
	b, err := codec.Marshal(pub)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 34 || b[0] != 0x58 || b[1] != 32 {
		t.Fatalf("public key not a 32-byte byte string: %x", b)
	}
	var got PublicKey
	if err := codec.Unmarshal(b, &got, codec.Limits{}); err != nil || got != pub {
		t.Fatalf("round trip: %v", err)
	}
	short := []byte{0x58, 31}
	short = append(short, make([]byte, 31)...)
	if err := codec.Unmarshal(short, &got, codec.Limits{}); err == nil {
		t.Fatal("31-byte key accepted")
	}
}

func TestKeyIDText(t *testing.T) {
	id := fixedSigningKey(t, 1).Public().ID()
	text, _ := id.MarshalText()
	if string(text) != id.String() || len(text) != 64 {
		t.Fatalf("text %q", text)
	}
	var got KeyID
	if err := got.UnmarshalText(text); err != nil || got != id {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range []string{"", "00", strings.Repeat("g", 64), strings.Repeat("0", 66)} {
		if err := got.UnmarshalText([]byte(bad)); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("UnmarshalText(%q) = %v", bad, err)
		}
	}
}

func TestSigningKeyRedacted(t *testing.T) {
	k := fixedSigningKey(t, 7)
	secret := b64.EncodeToString(k.Seed())
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("key", "k", k)
	for _, s := range []string{
		fmt.Sprint(k), fmt.Sprintf("%v", k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k),
		fmt.Sprintf("%s", k), fmt.Sprintf("%x", k), fmt.Sprintf("%v", *k), fmt.Sprintf("%#v", *k), logged.String(),
	} {
		if strings.Contains(s, secret) || strings.Contains(s, fmt.Sprintf("%x", k.Seed()[:8])) || strings.Contains(s, fmt.Sprint(k.Seed()[:4])[1:8]) {
			t.Errorf("secret revealed in %q", s)
		}
	}
	if !strings.Contains(k.String(), k.Public().ID().String()) {
		t.Errorf("String %q does not name the key", k.String())
	}
}

func TestSigningKeyFile(t *testing.T) {
	dir := t.TempDir()
	k, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "release.key")
	if err := WriteSigningKeyFile(path, k); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o, want 0600", st.Mode().Perm())
	}
	got, err := ReadSigningKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Public() != k.Public() || !bytes.Equal(got.Seed(), k.Seed()) {
		t.Fatal("key changed through the file")
	}
	other, _ := GenerateSigningKey()
	if err := WriteSigningKeyFile(path, other); !errors.Is(err, ErrKeyFileExists) {
		t.Fatalf("overwrite: %v, want ErrKeyFileExists", err)
	}
	if again, _ := ReadSigningKeyFile(path); again.Public() != k.Public() {
		t.Fatal("refused overwrite still changed the file")
	}
}

func TestReadKeyFileRefuses(t *testing.T) {
	dir := t.TempDir()
	k := fixedSigningKey(t, 3)
	good := string(k.marshalSecretText())
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    error
	}{
		{"mode 0644", good, 0o644, ErrKeyFilePermissions},
		{"mode 0640", good, 0o640, ErrKeyFilePermissions},
		{"mode 0604", good, 0o604, ErrKeyFilePermissions},
		{"mode 0620", good, 0o620, ErrKeyFilePermissions},
		{"empty", "# only a comment\n", 0o600, ErrMalformedKey},
		{"two keys", good + "\n" + good + "\n", 0o600, ErrMalformedKey},
		{"public key", k.Public().String(), 0o600, ErrMalformedKey},
		{"short seed", SigningKeyPrefix + b64.EncodeToString(make([]byte, 31)), 0o600, ErrMalformedKey},
		{"huge", strings.Repeat("#", maxKeyFile+10), 0o600, ErrMalformedKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := ReadSigningKeyFile(path)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want == ErrKeyFilePermissions && !strings.Contains(err.Error(), "chmod 600 "+path) {
				t.Fatalf("error %q does not name the fix", err)
			}
		})
	}
	// Comments and surrounding blanks are fine.
	path := filepath.Join(dir, "commented")
	os.WriteFile(path, []byte("# hello\n\n  "+good+"  \n# bye\n"), 0o600)
	if got, err := ReadSigningKeyFile(path); err != nil || got.Public() != k.Public() {
		t.Fatalf("commented file: %v", err)
	}
	if _, err := ReadSigningKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// Secret keys must not be comparable with ==: a timing-unsafe comparison
// of secrets would compile otherwise.
func TestSecretKeysNotComparable(t *testing.T) {
	for _, v := range []any{SigningKey{}, DeviceKey{}} {
		if typ := reflect.TypeOf(v); typ.Comparable() {
			t.Errorf("%s is comparable with ==", typ)
		}
	}
	for _, v := range []any{PublicKey{}, KeyID{}, DevicePublicKey{}} {
		if typ := reflect.TypeOf(v); !typ.Comparable() {
			t.Errorf("%s should be a comparable value type", typ)
		}
	}
}
