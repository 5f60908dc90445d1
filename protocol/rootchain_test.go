package protocol

import (
	"errors"
	"testing"
	"time"

	"github.com/meshota/meshota/crypto"
)

func TestVerifyRootChain(t *testing.T) {
	k1, _ := crypto.GenerateSigningKey()
	k2, _ := crypto.GenerateSigningKey()
	stranger, _ := crypto.GenerateSigningKey()
	root := func(v uint64, k *crypto.SigningKey, expires time.Time, signers ...*crypto.SigningKey) []byte {
		r := &crypto.Root{Version: v, Expires: expires,
			Keys: map[crypto.KeyID]crypto.PublicKey{k.Public().ID(): k.Public()},
			Roles: map[string]crypto.Role{
				crypto.RoleRoot:    {KeyIDs: []crypto.KeyID{k.Public().ID()}, Threshold: 1},
				crypto.RoleRelease: {KeyIDs: []crypto.KeyID{k.Public().ID()}, Threshold: 1},
			}}
		env, err := crypto.SignRoot(r, signers...)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := env.Marshal()
		return b
	}
	later := time.Now().Add(time.Hour)
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	v1 := root(1, k1, later, k1)
	v1expired := root(1, k1, past, k1)
	v2 := root(2, k2, later, k1, k2)
	v2onlyNew := root(2, k2, later, k2)
	v1forged := root(1, k1, later, stranger)
	cases := []struct {
		name    string
		chain   [][]byte
		version uint64
		ok      bool
	}{
		{"initial only", [][]byte{v1}, 1, true},
		{"rotated", [][]byte{v1, v2}, 2, true},
		{"expired roots still load", [][]byte{v1expired}, 1, true},
		{"empty", nil, 0, false},
		{"initial not self-signed", [][]byte{v1forged}, 0, false},
		{"successor signed only by new keys", [][]byte{v1, v2onlyNew}, 0, false},
		{"garbage", [][]byte{[]byte("not a root")}, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := VerifyRootChain(c.chain, Limits{})
			if c.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
			if err != nil && !errors.Is(err, ErrRootUpdate) {
				t.Fatalf("err %v does not wrap ErrRootUpdate", err)
			}
			if err == nil && r.Version != c.version {
				t.Fatalf("version %d, want %d", r.Version, c.version)
			}
		})
	}
	if got := RootsAfter([][]byte{v1, v2, []byte("junk")}, 1, Limits{}); len(got) != 1 || RootVersion(got[0], Limits{}) != 2 {
		t.Fatalf("RootsAfter(1) = %d roots", len(got))
	}
}
