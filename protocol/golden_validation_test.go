package protocol

import (
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

// sentinels names every validation error for the vectors.
var sentinels = map[string]error{
	"ErrTooLarge": ErrTooLarge, "ErrMalformed": ErrMalformed, "ErrWrongPayloadType": ErrWrongPayloadType,
	"ErrLimitExceeded": ErrLimitExceeded, "ErrInvalidField": ErrInvalidField, "ErrBadSignature": ErrBadSignature,
	"ErrThresholdNotMet": ErrThresholdNotMet, "ErrOldRoot": ErrOldRoot, "ErrRootAhead": ErrRootAhead,
	"ErrWrongChannel": ErrWrongChannel, "ErrStaleSequence": ErrStaleSequence, "ErrDuplicate": ErrDuplicate,
	"ErrEquivocation": ErrEquivocation, "ErrDowngrade": ErrDowngrade, "ErrExpired": ErrExpired,
	"ErrExpiryTooFar": ErrExpiryTooFar, "ErrNotYetValid": ErrNotYetValid,
}

// TestGoldenValidation replays testdata/validation.json: the first vector
// is a trust root; each following signed manifest is validated, in order,
// at testNow against the state left by the previous ones (accepted
// manifests are recorded), and must get the stored verdict.
func TestGoldenValidation(t *testing.T) {
	var vs []vector
	if *update {
		vs = makeValidationVectors(t)
		checkGolden(t, "validation.json", vs)
	}
	vs = loadVectors(t, "validation.json")
	root, err := verifyInitialRootBytes(mustHex(t, vs[0].Hex), testNow)
	if err != nil {
		t.Fatalf("stored root: %v", err)
	}
	s := NewTrustedState(root)
	for _, v := range vs[1:] {
		m, err := ValidateManifest(mustHex(t, v.Hex), s, v.Topic, testNow, Limits{})
		if v.Want == "ok" {
			if err != nil {
				t.Errorf("%s: %v, want ok", v.Name, err)
				continue
			}
			if err := s.Accept(m); err != nil {
				t.Errorf("%s: accept: %v", v.Name, err)
			}
			continue
		}
		want, ok := sentinels[v.Want]
		if !ok {
			t.Fatalf("%s: unknown verdict %q", v.Name, v.Want)
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %s", v.Name, err, v.Want)
		}
	}
}

func makeValidationVectors(t *testing.T) []vector {
	f := newFixture(t)
	vs := []vector{{Name: "root", Note: "trust root v1: release role 2 of 3 keys", Hex: hex.EncodeToString(f.rootBytes)}}
	add := func(name, topic, want string, data []byte) {
		vs = append(vs, vector{Name: name, Topic: topic, Want: want, Hex: hex.EncodeToString(data)})
	}
	m7 := baseManifest()
	add("seq7-two-signatures", "stable", "ok", f.sign(t, m7))
	add("seq7-again-other-signers", "stable", "ErrDuplicate", f.sign(t, m7, f.releaseKeys[1], f.releaseKeys[2]))
	m7b := baseManifest()
	m7b.RolloutBasisPoints = 5000
	add("seq7-different-content", "stable", "ErrEquivocation", f.sign(t, m7b))
	add("seq6", "stable", "ErrStaleSequence", f.sign(t, withSeq(baseManifest(), 6)))
	add("seq8-one-signature", "stable", "ErrThresholdNotMet", f.sign(t, withSeq(baseManifest(), 8), f.releaseKeys[0]))
	add("seq8-wrong-topic", "edge", "ErrWrongChannel", f.sign(t, withSeq(baseManifest(), 8)))
	exp := withSeq(baseManifest(), 8)
	exp.Created, exp.Expires = testNow.Add(-48*time.Hour), testNow.Add(-time.Hour)
	add("seq8-expired", "stable", "ErrExpired", f.sign(t, exp))
	far := withSeq(baseManifest(), 8)
	far.Expires = testNow.Add(365 * 24 * time.Hour)
	add("seq8-expiry-too-far", "stable", "ErrExpiryTooFar", f.sign(t, far))
	down := withSeq(baseManifest(), 8)
	down.Version = "1.3.2"
	add("seq8-downgrade-without-flag", "stable", "ErrDowngrade", f.sign(t, down))
	down.Rollback, down.RollbackTo = true, "1.3.2"
	add("seq8-rollback-to-1.3.2", "stable", "ok", f.sign(t, down))
	add("seq9-root-v2-unknown-keys", "stable", "ErrRootAhead", f.sign(t, func() *Manifest { m := withSeq(baseManifest(), 9); m.RootVersion = 2; return m }(), newSigningKey(t)))
	return vs
}
