package crypto

import (
	"bytes"
	"testing"
	"time"

	"github.com/meshota/meshota/protocol/codec"
)

// testNow is the reference time of every test: verification is pure.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// fixedSigningKey derives a deterministic key from a label, for golden
// vectors and reproducible tests.
func fixedSigningKey(t testing.TB, label byte) *SigningKey {
	t.Helper()
	k, err := SigningKeyFromSeed(bytes.Repeat([]byte{label}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newKeys(t testing.TB, n int, first byte) []*SigningKey {
	t.Helper()
	ks := make([]*SigningKey, n)
	for i := range ks {
		ks[i] = fixedSigningKey(t, first+byte(i))
	}
	return ks
}

// buildRoot makes a root of version v whose root role is rootKeys
// (threshold rootT) and release role relKeys (threshold relT).
func buildRoot(t testing.TB, v uint64, rootKeys []*SigningKey, rootT int, relKeys []*SigningKey, relT int) *Root {
	t.Helper()
	r := &Root{Version: v, Expires: testNow.Add(365 * 24 * time.Hour), Keys: map[KeyID]PublicKey{}, Roles: map[string]Role{}}
	role := func(ks []*SigningKey, th int) Role {
		ro := Role{Threshold: th}
		for _, k := range ks {
			r.Keys[k.Public().ID()] = k.Public()
			ro.KeyIDs = append(ro.KeyIDs, k.Public().ID())
		}
		return ro
	}
	r.Roles[RoleRoot] = role(rootKeys, rootT)
	r.Roles[RoleRelease] = role(relKeys, relT)
	return r
}

func signRoot(t testing.TB, r *Root, keys ...*SigningKey) *Envelope {
	t.Helper()
	env, err := SignRoot(r, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// marshalUnchecked encodes e without Envelope.check, to build hostile input.
func marshalUnchecked(e *Envelope) ([]byte, error) { return codec.Marshal(e) }

// marshalRootUnchecked encodes r without Root.check, to build hostile input.
func marshalRootUnchecked(r *Root) ([]byte, error) {
	return codec.Marshal(&rootDoc{Version: r.Version, Expires: r.Expires.Unix(), Keys: r.Keys, Roles: r.Roles})
}
