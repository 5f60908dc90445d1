package crypto

import (
	"errors"
	"testing"
	"time"
)

func TestRootRoundTrip(t *testing.T) {
	rootKeys, relKeys := newKeys(t, 3, 30), newKeys(t, 2, 40)
	r := buildRoot(t, 1, rootKeys, 2, relKeys, 1)
	r.Roles["status"] = Role{KeyIDs: []KeyID{relKeys[1].Public().ID()}, Threshold: 1}
	env := signRoot(t, r, rootKeys[0], rootKeys[1])
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	penv, err := ParseEnvelope(b, MaxRootDocBytes)
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyInitialRoot(penv, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || !got.Expires.Equal(r.Expires) || len(got.Keys) != 5 || len(got.Roles) != 3 || got.Roles["status"].Threshold != 1 {
		t.Fatalf("round trip changed the root: %+v", got)
	}
	for id, pk := range r.Keys {
		if got.Keys[id] != pk {
			t.Fatalf("key %s changed", id)
		}
	}
}

func TestRootStructure(t *testing.T) {
	rootKeys, relKeys := newKeys(t, 2, 30), newKeys(t, 1, 40)
	stranger := fixedSigningKey(t, 99).Public()
	tests := []struct {
		name   string
		modify func(r *Root)
	}{
		{"version 0", func(r *Root) { r.Version = 0 }},
		{"no expiry", func(r *Root) { r.Expires = time.Unix(0, 0) }},
		{"no keys", func(r *Root) { r.Keys = nil }},
		{"no root role", func(r *Root) { delete(r.Roles, RoleRoot) }},
		{"no release role", func(r *Root) { delete(r.Roles, RoleRelease) }},
		{"role key not listed", func(r *Root) {
			ro := r.Roles[RoleRelease]
			ro.KeyIDs = append(ro.KeyIDs, stranger.ID())
			r.Roles[RoleRelease] = ro
		}},
		{"key under wrong ID", func(r *Root) { r.Keys[rootKeys[0].Public().ID()] = stranger }},
		{"duplicate role key", func(r *Root) {
			ro := r.Roles[RoleRoot]
			ro.KeyIDs = append(ro.KeyIDs, ro.KeyIDs[0])
			ro.Threshold = 3
			r.Roles[RoleRoot] = ro
		}},
		{"threshold 0", func(r *Root) { r.Roles[RoleRoot] = Role{KeyIDs: r.Roles[RoleRoot].KeyIDs} }},
		{"threshold above keys", func(r *Root) { r.Roles[RoleRoot] = Role{KeyIDs: r.Roles[RoleRoot].KeyIDs, Threshold: 3} }},
		{"empty role name", func(r *Root) { r.Roles[""] = r.Roles[RoleRoot] }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := buildRoot(t, 1, rootKeys, 2, relKeys, 1)
			tc.modify(r)
			if _, err := SignRoot(r, rootKeys...); !errors.Is(err, ErrMalformedRoot) {
				t.Fatalf("SignRoot: %v, want ErrMalformedRoot", err)
			}
			// The same document, encoded and signed without the checks,
			// must be refused by the parser too.
			payload, err := marshalRootUnchecked(r)
			if err != nil {
				t.Fatal(err)
			}
			env, err := Sign(RootPayloadType, payload, rootKeys...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ParseRoot(env); !errors.Is(err, ErrMalformedRoot) {
				t.Fatalf("ParseRoot: %v, want ErrMalformedRoot", err)
			}
		})
	}
	good := signRoot(t, buildRoot(t, 1, rootKeys, 2, relKeys, 1), rootKeys...)
	good.PayloadType = testType
	if _, err := ParseRoot(good); !errors.Is(err, ErrPayloadType) {
		t.Fatalf("root under another payload type: %v", err)
	}
}

func TestVerifyInitialRoot(t *testing.T) {
	rootKeys, relKeys := newKeys(t, 3, 30), newKeys(t, 1, 40)
	r := buildRoot(t, 1, rootKeys, 2, relKeys, 1)
	tests := []struct {
		name    string
		signers []*SigningKey
		now     time.Time
		want    error
	}{
		{"threshold of own root role", rootKeys[1:], testNow, nil},
		{"one root key of two needed", rootKeys[:1], testNow, ErrThresholdNotMet},
		{"release keys only", relKeys, testNow, ErrThresholdNotMet},
		{"stranger keys", newKeys(t, 2, 90), testNow, ErrThresholdNotMet},
		{"expired", rootKeys, r.Expires, ErrRootExpired},
		{"just before expiry", rootKeys, r.Expires.Add(-time.Second), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyInitialRoot(signRoot(t, r, tc.signers...), tc.now)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestUpdateRoot(t *testing.T) {
	oldKeys, newRootKeys, relKeys := newKeys(t, 3, 30), newKeys(t, 3, 50), newKeys(t, 1, 40)
	v1 := buildRoot(t, 1, oldKeys, 2, relKeys, 1)
	v2 := buildRoot(t, 2, newRootKeys, 2, relKeys, 1)
	v3 := buildRoot(t, 3, newRootKeys, 2, relKeys, 1)
	tests := []struct {
		name    string
		next    *Root
		signers []*SigningKey
		want    error
	}{
		{"old and new thresholds", v2, []*SigningKey{oldKeys[0], oldKeys[2], newRootKeys[0], newRootKeys[1]}, nil},
		{"signed only by new keys", v2, newRootKeys, ErrThresholdNotMet},
		{"signed only by old keys", v2, oldKeys, ErrThresholdNotMet},
		{"one old key short", v2, []*SigningKey{oldKeys[0], newRootKeys[0], newRootKeys[1]}, ErrThresholdNotMet},
		{"one new key short", v2, []*SigningKey{oldKeys[0], oldKeys[1], newRootKeys[0]}, ErrThresholdNotMet},
		{"skips a version", v3, append(append([]*SigningKey{}, oldKeys...), newRootKeys...), ErrRootVersion},
		{"same version", buildRoot(t, 1, oldKeys, 2, relKeys, 1), oldKeys, ErrRootVersion},
		{"release keys", v2, append([]*SigningKey{relKeys[0]}, newRootKeys...), ErrThresholdNotMet},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := UpdateRoot(v1, signRoot(t, tc.next, tc.signers...))
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err == nil && got.Version != 2 {
				t.Fatalf("version %d", got.Version)
			}
		})
	}
}

func TestWalkRoots(t *testing.T) {
	k1, k2, k3, rel := newKeys(t, 1, 60), newKeys(t, 1, 61), newKeys(t, 1, 62), newKeys(t, 1, 63)
	v1 := buildRoot(t, 1, k1, 1, rel, 1)
	v2 := buildRoot(t, 2, k2, 1, rel, 1)
	v2.Expires = testNow.Add(-time.Hour) // expired along the way: fine
	v3 := buildRoot(t, 3, k3, 1, rel, 1)
	e2 := signRoot(t, v2, k1[0], k2[0])
	e3 := signRoot(t, v3, k2[0], k3[0])
	tests := []struct {
		name  string
		chain []*Envelope
		now   time.Time
		want  error
		ver   uint64
	}{
		{"full chain", []*Envelope{e2, e3}, testNow, nil, 3},
		{"empty chain", nil, testNow, nil, 1},
		{"final root expired", []*Envelope{e2}, testNow, ErrRootExpired, 0},
		{"everything expired", []*Envelope{e2, e3}, v3.Expires.Add(time.Second), ErrRootExpired, 0},
		{"gap", []*Envelope{e3}, testNow, ErrRootVersion, 0},
		{"out of order", []*Envelope{e3, e2}, testNow, ErrRootVersion, 0},
		{"repeated", []*Envelope{e2, e2}, testNow, ErrRootVersion, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := WalkRoots(v1, tc.chain, tc.now)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err == nil && got.Version != tc.ver {
				t.Fatalf("version %d, want %d", got.Version, tc.ver)
			}
		})
	}
	if _, err := WalkRoots(nil, nil, testNow); err == nil {
		t.Fatal("nil trusted root accepted")
	}
}
