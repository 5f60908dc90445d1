package protocol

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/meshota/meshota/crypto"
)

// fixture is a publisher: root keys, release keys, the signed root, and a
// node's trusted state starting from it.
type fixture struct {
	rootKeys    []*crypto.SigningKey
	releaseKeys []*crypto.SigningKey
	root        *crypto.Root
	rootBytes   []byte
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{
		rootKeys:    []*crypto.SigningKey{newSigningKey(t), newSigningKey(t)},
		releaseKeys: []*crypto.SigningKey{newSigningKey(t), newSigningKey(t), newSigningKey(t)},
	}
	f.root, f.rootBytes = makeRoot(t, 1, f.rootKeys, 2, f.releaseKeys, 2, nil)
	return f
}

func (f *fixture) state() *TrustedState { return NewTrustedState(f.root) }

// sign signs m with the given release keys (indices into releaseKeys).
func (f *fixture) sign(t testing.TB, m *Manifest, keys ...*crypto.SigningKey) []byte {
	t.Helper()
	if keys == nil {
		keys = f.releaseKeys[:2]
	}
	data, err := SignManifest(m, Limits{}, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func TestValidateManifestSignatures(t *testing.T) {
	f := newFixture(t)
	m := baseManifest()
	good := f.sign(t, m)
	payload, _ := EncodeManifest(m, Limits{})
	report, _ := signPayload(StatusPayloadType, payload, f.releaseKeys[0], f.releaseKeys[1])
	tampered := bytes.Replace(good, []byte{0x0e, 0x19, 0x09, 0xc4}, []byte{0x0e, 0x19, 0x09, 0xc5}, 1) // rollout 2500 → 2501
	if bytes.Equal(tampered, good) {
		t.Fatal("tampering found nothing to change")
	}
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"threshold of release keys", good, nil},
		{"all three release keys", f.sign(t, m, f.releaseKeys...), nil},
		{"one release key", f.sign(t, m, f.releaseKeys[2]), ErrThresholdNotMet},
		{"same key twice", f.sign(t, m, f.releaseKeys[0], f.releaseKeys[0]), ErrThresholdNotMet},
		{"root keys are not release keys", f.sign(t, m, f.rootKeys...), ErrThresholdNotMet},
		{"unknown keys", f.sign(t, m, newSigningKey(t), newSigningKey(t)), ErrThresholdNotMet},
		{"payload altered after signing", tampered, ErrThresholdNotMet},
		{"another payload type", report, ErrWrongPayloadType},
		{"not an envelope", payload, ErrMalformed},
		{"empty", nil, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ValidateManifest(c.data, f.state(), "stable", testNow, Limits{})
			wantErr(t, err, c.want)
			if err == nil && got.Sequence != m.Sequence {
				t.Fatalf("decoded sequence %d", got.Sequence)
			}
		})
	}
}

func TestValidateManifestTooLarge(t *testing.T) {
	f := newFixture(t)
	good := f.sign(t, baseManifest())
	_, err := ValidateManifest(good, f.state(), "stable", testNow, Limits{MaxManifestBytes: len(good) - 1})
	wantErr(t, err, ErrTooLarge)
	_, err = ValidateManifest(append(good, make([]byte, DefaultLimits.MaxManifestBytes)...), f.state(), "stable", testNow, Limits{})
	wantErr(t, err, ErrTooLarge)
	big := baseManifest()
	big.BlockCount = DefaultLimits.MaxBlockCount + 1
	payload, _ := codecMarshal(big)
	data, _ := signPayload(ManifestPayloadType, payload, f.releaseKeys[:2]...)
	_, err = ValidateManifest(data, f.state(), "stable", testNow, Limits{})
	wantErr(t, err, ErrLimitExceeded)
}

func TestValidateManifestWrongTopic(t *testing.T) {
	f := newFixture(t)
	good := f.sign(t, baseManifest())
	_, err := ValidateManifest(good, f.state(), "edge", testNow, Limits{})
	wantErr(t, err, ErrWrongChannel)
}

func TestValidateManifestTimes(t *testing.T) {
	f := newFixture(t)
	good := f.sign(t, baseManifest())
	cases := []struct {
		name string
		now  time.Time
		l    Limits
		want error
	}{
		{"now", testNow, Limits{}, nil},
		{"after expiry", testNow.Add(31 * 24 * time.Hour), Limits{}, ErrExpired},
		{"before creation", testNow.Add(-2 * time.Hour), Limits{}, ErrNotYetValid},
		{"expiry beyond a tight bound", testNow, Limits{MaxExpiry: 24 * time.Hour}, ErrExpiryTooFar},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ValidateManifest(good, f.state(), "stable", c.now, c.l)
			wantErr(t, err, c.want)
		})
	}
	// A valid manifest under a trust root that has expired is refused.
	s := f.state()
	expired := *s.Root
	expired.Expires = testNow.Add(-time.Second)
	s.Root = &expired
	_, err := ValidateManifest(good, s, "stable", testNow, Limits{})
	wantErr(t, err, ErrExpired)
}

func TestValidateManifestFreshness(t *testing.T) {
	f := newFixture(t)
	s := f.state()
	accept := func(m *Manifest) error {
		v, err := ValidateManifest(f.sign(t, m), s, m.Channel, testNow, Limits{})
		if err != nil {
			return err
		}
		return s.Accept(v)
	}
	m7 := baseManifest()
	wantErr(t, accept(m7), nil)
	wantErr(t, accept(m7), ErrDuplicate)
	// Same content signed by another pair of keys is the same manifest.
	v, err := ValidateManifest(f.sign(t, m7, f.releaseKeys[1], f.releaseKeys[2]), s, "stable", testNow, Limits{})
	wantErr(t, err, ErrDuplicate)
	_ = v
	m7b := baseManifest()
	m7b.RolloutBasisPoints = 10000
	var eq *EquivocationError
	if err := accept(m7b); !errors.As(err, &eq) || eq.Sequence != 7 {
		t.Fatalf("equivocation not reported: %v", err)
	}
	m6 := baseManifest()
	m6.Sequence, m6.Supersedes = 6, 5
	wantErr(t, accept(m6), ErrStaleSequence)
	m8 := baseManifest()
	m8.Sequence, m8.Version = 8, "1.3.0"
	wantErr(t, accept(m8), ErrDowngrade)
	m8.Rollback, m8.RollbackTo = true, "1.3.0"
	wantErr(t, accept(m8), nil)
	if s.Channels["stable"].Sequence != 8 {
		t.Fatalf("mark = %+v", s.Channels["stable"])
	}
	// Other channels are independent.
	e1 := baseManifest()
	e1.Channel, e1.Sequence, e1.Supersedes = "edge", 1, 0
	wantErr(t, accept(e1), nil)
	// Accept refuses what validation did not produce, and re-checks order.
	wantErr(t, s.Accept(baseManifest()), ErrNotValidated)
	s2 := f.state()
	v9, _ := ValidateManifest(f.sign(t, withSeq(baseManifest(), 9)), s2, "stable", testNow, Limits{})
	v10, _ := ValidateManifest(f.sign(t, withSeq(baseManifest(), 10)), s2, "stable", testNow, Limits{})
	wantErr(t, s2.Accept(v10), nil)
	wantErr(t, s2.Accept(v9), ErrStaleSequence)
}

func withSeq(m *Manifest, seq uint64) *Manifest {
	m.Sequence, m.Supersedes = seq, seq-1
	return m
}

func TestValidateManifestAfterRotation(t *testing.T) {
	f := newFixture(t)
	newRelease := []*crypto.SigningKey{newSigningKey(t), newSigningKey(t)}
	_, root2 := makeRoot(t, 2, f.rootKeys, 2, newRelease, 2, f.rootKeys)
	s := f.state()
	if err := s.UpdateRoot(root2, testNow, Limits{}); err != nil {
		t.Fatal(err)
	}
	if s.Root.Version != 2 {
		t.Fatalf("root version %d after update", s.Root.Version)
	}
	old := baseManifest() // RootVersion 1, signed by the rotated-out keys
	_, err := ValidateManifest(f.sign(t, old), s, "stable", testNow, Limits{})
	wantErr(t, err, ErrOldRoot)
	cur := baseManifest()
	cur.RootVersion = 2
	_, err = ValidateManifest(f.sign(t, cur, newRelease...), s, "stable", testNow, Limits{})
	wantErr(t, err, nil)
	ahead := baseManifest()
	ahead.RootVersion = 3
	_, err = ValidateManifest(f.sign(t, ahead, newSigningKey(t)), s, "stable", testNow, Limits{})
	wantErr(t, err, ErrRootAhead)
	// A root update that is not signed by the old root keys is refused.
	_, bad := makeRoot(t, 3, []*crypto.SigningKey{newSigningKey(t)}, 1, newRelease, 1, nil)
	wantErr(t, s.UpdateRoot(bad, testNow, Limits{}), ErrRootUpdate)
	wantErr(t, s.UpdateRoot(make([]byte, DefaultLimits.MaxRootBytes+1), testNow, Limits{}), ErrTooLarge)
}

func TestRootRotationRecoversFromFastForward(t *testing.T) {
	f := newFixture(t)
	s := f.state()
	// A thief with the release keys pushes the channel to a huge sequence.
	ff := withSeq(baseManifest(), 1<<40)
	v, err := ValidateManifest(f.sign(t, ff), s, "stable", testNow, Limits{})
	wantErr(t, err, nil)
	wantErr(t, s.Accept(v), nil)
	genuine := withSeq(baseManifest(), 8)
	_, err = ValidateManifest(f.sign(t, genuine), s, "stable", testNow, Limits{})
	wantErr(t, err, ErrStaleSequence)
	// Keeping one old release key must not reset anything.
	keep := []*crypto.SigningKey{f.releaseKeys[0], newSigningKey(t)}
	_, r2 := makeRoot(t, 2, f.rootKeys, 2, keep, 2, f.rootKeys)
	partial := f.state()
	partial.Channels["stable"] = s.Channels["stable"]
	wantErr(t, partial.UpdateRoot(r2, testNow, Limits{}), nil)
	if _, ok := partial.Channels["stable"]; !ok {
		t.Fatal("marks cleared although an old release key remains")
	}
	// Rotating every release key clears the marks…
	fresh := []*crypto.SigningKey{newSigningKey(t), newSigningKey(t)}
	_, r2b := makeRoot(t, 2, f.rootKeys, 2, fresh, 2, f.rootKeys)
	wantErr(t, s.UpdateRoot(r2b, testNow, Limits{}), nil)
	if len(s.Channels) != 0 {
		t.Fatalf("marks survive a full release-key rotation: %v", s.Channels)
	}
	// …the genuine publisher continues under the new keys…
	genuine.RootVersion = 2
	_, err = ValidateManifest(f.sign(t, genuine, fresh...), s, "stable", testNow, Limits{})
	wantErr(t, err, nil)
	// …and the thief's manifests no longer verify.
	_, err = ValidateManifest(f.sign(t, ff), s, "stable", testNow, Limits{})
	wantErr(t, err, ErrOldRoot)
}

func TestTrustedStateRoundTrip(t *testing.T) {
	f := newFixture(t)
	s := f.state()
	v, _ := ValidateManifest(f.sign(t, baseManifest()), s, "stable", testNow, Limits{})
	wantErr(t, s.Accept(v), nil)
	data, err := MarshalTrustedState(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseTrustedState(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.Root.Version != 1 || back.Channels["stable"] != s.Channels["stable"] {
		t.Fatalf("state round trip: %+v", back)
	}
	_, err = ValidateManifest(f.sign(t, baseManifest()), back, "stable", testNow, Limits{})
	wantErr(t, err, ErrDuplicate)
}

func FuzzValidateManifest(f *testing.F) {
	fx := newFixture(f)
	m := baseManifest()
	f.Add(fx.sign(f, m))
	rb := withSeq(baseManifest(), 9)
	rb.Rollback, rb.RollbackTo = true, rb.Version
	f.Add(fx.sign(f, rb))
	f.Add(fx.sign(f, m, fx.releaseKeys[0]))
	state := fx.state()
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ValidateManifest(data, state, "stable", testNow, Limits{})
		if err != nil {
			return
		}
		// Whatever passes is a signed, in-bounds, fresh manifest of the
		// topic's channel.
		if got.Channel != "stable" || got.check(DefaultLimits) != nil || !testNow.Before(got.Expires) {
			t.Fatalf("accepted a manifest that breaks a rule: %+v", got)
		}
	})
}
