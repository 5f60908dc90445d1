package protocol

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meshota/meshota/crypto"
)

func TestValidateStatusReport(t *testing.T) {
	d, other := newSigner(t), newSigner(t)
	dpub, opub := d.sk.Public(), other.sk.Public()
	enrolled := map[DeviceID]crypto.PublicKey{d.id: dpub, other.id: opub}
	report := func(mut func(*StatusReport)) *StatusReport {
		r := baseReport()
		r.Device = d.id
		if mut != nil {
			mut(r)
		}
		return r
	}
	sign := func(r *StatusReport, k *crypto.SigningKey) []byte {
		r.Time = r.Time.UTC()
		payload, err := codecMarshal(r) // bypasses the encoder's checks
		if err != nil {
			t.Fatal(err)
		}
		data, err := signPayload(StatusPayloadType, payload, k)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	good, err := SignStatusReport(report(nil), d.sk, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SignStatusReport(report(nil), other.sk, Limits{}); !errors.Is(err, ErrDeviceMismatch) {
		t.Fatalf("signing another device's report: %v", err)
	}
	swapped := map[DeviceID]crypto.PublicKey{d.id: opub}
	cases := []struct {
		name     string
		data     []byte
		enrolled map[DeviceID]crypto.PublicKey
		topic    string
		now      time.Time
		want     error
	}{
		{"valid", good, enrolled, "stable", testNow, nil},
		{"any topic", good, enrolled, "", testNow, nil},
		{"signed by another device", sign(report(nil), other.sk), enrolled, "stable", testNow, ErrThresholdNotMet},
		{"not enrolled", good, map[DeviceID]crypto.PublicKey{other.id: opub}, "stable", testNow, ErrUnknownDevice},
		{"enrolled under another key", good, swapped, "stable", testNow, ErrDeviceMismatch},
		{"wrong topic", good, enrolled, "edge", testNow, ErrWrongChannel},
		{"replayed a month later", good, enrolled, "stable", testNow.Add(30 * 24 * time.Hour), ErrExpired},
		{"from the future", good, enrolled, "stable", testNow.Add(-time.Hour), ErrNotYetValid},
		{"long error", sign(report(func(r *StatusReport) { r.Error = strings.Repeat("x", 600) }), d.sk), enrolled, "stable", testNow, ErrLimitExceeded},
		{"too large", append(good, make([]byte, 5000)...), enrolled, "stable", testNow, ErrTooLarge},
		{"a manifest", newFixture(t).sign(t, baseManifest()), enrolled, "stable", testNow, ErrWrongPayloadType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ValidateStatusReport(c.data, c.enrolled, c.topic, c.now, Limits{})
			wantErr(t, err, c.want)
			if err == nil && (got.Device != d.id || got.State != StateFailed) {
				t.Fatalf("decoded %+v", got)
			}
		})
	}
}

func FuzzValidateStatusReport(f *testing.F) {
	d := newSigner(f)
	pub := d.sk.Public()
	enrolled := map[DeviceID]crypto.PublicKey{d.id: pub}
	r := baseReport()
	r.Device = d.id
	good, err := SignStatusReport(r, d.sk, Limits{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ValidateStatusReport(data, enrolled, "stable", testNow, Limits{})
		if err == nil && (got.Device != d.id || got.check(DefaultLimits) != nil) {
			t.Fatalf("accepted %+v", got)
		}
	})
}

type signer struct {
	sk *crypto.SigningKey
	id DeviceID
}

func newSigner(t testing.TB) signer {
	sk := newSigningKey(t)
	return signer{sk: sk, id: DeviceIDOf(sk.Public())}
}
