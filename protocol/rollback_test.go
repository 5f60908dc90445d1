package protocol

import (
	"errors"
	"testing"
	"time"

	"github.com/meshota/meshota/crypto"
)

func TestRollbackFlow(t *testing.T) {
	f := newFixture(t)
	ks, _ := NewKeyringState("stable")
	dev := newTestDevice(t, crypto.KEMX25519)
	if err := ks.Enroll(dev.enr); err != nil {
		t.Fatal(err)
	}
	s := f.state()
	// 1.3.2 at sequence 7, then 1.4.0 at sequence 8 under a new epoch.
	m7, rk7, _, _ := publish(t, ks, 7)
	m7.Version = "1.3.2"
	v, err := ValidateManifest(f.sign(t, m7), s, "stable", testNow, Limits{})
	wantErr(t, err, nil)
	wantErr(t, s.Accept(v), nil)
	if err := ks.Rekey(); err != nil {
		t.Fatal(err)
	}
	m8, _, _, _ := publish(t, ks, 8)
	m8.Version = "1.4.0"
	v, err = ValidateManifest(f.sign(t, m8), s, "stable", testNow, Limits{})
	wantErr(t, err, nil)
	wantErr(t, s.Accept(v), nil)
	// Roll back to sequence 7's content with sequence 9.
	root, shards, ref, err := ks.Build(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := NewRollback(m7, ks, ref, 9, 8, 1, testNow.Add(-time.Minute), testNow.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !rb.Rollback || rb.RollbackTo != "1.3.2" || rb.Version != "1.3.2" || !rb.Index.Equals(m7.Index) || rb.Keyring.Epoch != 2 {
		t.Fatalf("rollback manifest %+v", rb)
	}
	got, err := ValidateManifest(f.sign(t, rb), s, "stable", testNow, Limits{})
	wantErr(t, err, nil)
	wantErr(t, s.Accept(got), nil)
	// The device opens the old release key through the current epoch.
	rk, err := openFor(t, dev, got, root, shards)
	if err != nil || rk != rk7 {
		t.Fatalf("rollback release key: %v", err)
	}
	// The same content without the flag is a refused downgrade.
	plain := *rb
	plain.Sequence, plain.Supersedes, plain.Rollback, plain.RollbackTo = 10, 9, false, ""
	s2 := f.state()
	s2.Channels["stable"] = ChannelMark{Sequence: 8, Version: "1.4.0"}
	_, err = ValidateManifest(f.sign(t, &plain), s2, "stable", testNow, Limits{})
	wantErr(t, err, ErrDowngrade)
	if _, err := NewRollback(m7, ks, ref, 7, 6, 1, testNow, testNow.Add(time.Hour)); !errors.Is(err, ErrStaleSequence) {
		t.Fatalf("rollback at the target's own sequence: %v", err)
	}
}

func TestUpdateRootsChain(t *testing.T) {
	f := newFixture(t)
	k2 := []*crypto.SigningKey{newSigningKey(t), newSigningKey(t)}
	k3 := []*crypto.SigningKey{newSigningKey(t), newSigningKey(t)}
	_, r2 := makeRoot(t, 2, k2, 2, f.releaseKeys, 2, f.rootKeys)
	_, r3 := makeRoot(t, 3, k3, 2, f.releaseKeys, 2, k2)
	s := f.state()
	wantErr(t, s.UpdateRoots([][]byte{f.rootBytes, r2, r3}, testNow, Limits{}), nil)
	if s.Root.Version != 3 {
		t.Fatalf("root v%d after the chain", s.Root.Version)
	}
	s = f.state()
	wantErr(t, s.UpdateRoots([][]byte{r3}, testNow, Limits{}), ErrRootUpdate) // gap
	wantErr(t, s.UpdateRoots(make([][]byte, 17), testNow, Limits{}), ErrLimitExceeded)
	// Expired at the time of use.
	wantErr(t, s.UpdateRoots([][]byte{r2}, testNow.Add(400*24*time.Hour), Limits{}), ErrRootUpdate)
}
