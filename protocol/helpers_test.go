package protocol

import (
	"testing"
	"time"

	"github.com/meshota/meshota/crypto"
)

func newSigningKey(t testing.TB) *crypto.SigningKey {
	t.Helper()
	k, err := crypto.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// makeRoot builds and signs a trust root of the given version whose root
// role is rootKeys (threshold rootT) and release role releaseKeys
// (threshold relT). prevRootKeys, if set, co-sign (rotation).
func makeRoot(t testing.TB, version uint64, rootKeys []*crypto.SigningKey, rootT int, releaseKeys []*crypto.SigningKey, relT int, prevRootKeys []*crypto.SigningKey) (*crypto.Root, []byte) {
	t.Helper()
	r := &crypto.Root{
		Version: version,
		Expires: testNow.Add(365 * 24 * time.Hour),
		Keys:    map[crypto.KeyID]crypto.PublicKey{},
		Roles:   map[string]crypto.Role{},
	}
	role := func(keys []*crypto.SigningKey, th int) crypto.Role {
		ro := crypto.Role{Threshold: th}
		for _, k := range keys {
			r.Keys[k.Public().ID()] = k.Public()
			ro.KeyIDs = append(ro.KeyIDs, k.Public().ID())
		}
		return ro
	}
	r.Roles[crypto.RoleRoot] = role(rootKeys, rootT)
	r.Roles[crypto.RoleRelease] = role(releaseKeys, relT)
	signers := append(append([]*crypto.SigningKey{}, rootKeys...), prevRootKeys...)
	env, err := crypto.SignRoot(r, signers...)
	if err != nil {
		t.Fatal(err)
	}
	data, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return r, data
}

func verifyInitialRootBytes(data []byte, now time.Time) (*crypto.Root, error) {
	env, err := crypto.ParseEnvelope(data, DefaultLimits.MaxRootBytes)
	if err != nil {
		return nil, err
	}
	return crypto.VerifyInitialRoot(env, now)
}

func newDeviceKey(t testing.TB, kem crypto.KEM) *crypto.DeviceKey {
	t.Helper()
	k, err := crypto.GenerateDeviceKey(kem)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
