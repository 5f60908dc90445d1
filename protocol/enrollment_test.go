package protocol

import (
	"strings"
	"testing"

	"github.com/meshota/meshota/crypto"
)

func TestEnrollmentRoundTripAndTampering(t *testing.T) {
	sk, dk := newSigningKey(t), newDeviceKey(t, crypto.KEMX25519)
	text, err := NewEnrollment(sk, dk, "kiosk-12", testNow)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(text, EnrollmentTextPrefix) || strings.ContainsAny(text, " \n") {
		t.Fatalf("text form %q", text)
	}
	e, err := ParseEnrollmentText(text, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Device != DeviceIDOf(sk.Public()) || e.Name != "kiosk-12" {
		t.Fatalf("decoded %+v", e)
	}
	// Terminal wrapping is tolerated.
	wrapped := text[:40] + "\n  " + text[40:80] + "\r\n" + text[80:]
	if _, err := ParseEnrollmentText(wrapped, Limits{}); err != nil {
		t.Fatalf("wrapped: %v", err)
	}
	// Another device's HPKE key spliced in with a foreign signature fails.
	other, _ := ParseEnrollmentText(mustEnroll(t), Limits{})
	forged := *e
	forged.DeviceKey = other.DeviceKey
	forgedText := enrollmentText(t, &forged, newSigningKey(t))
	selfSigned := *e
	selfSigned.Device = other.Device
	cases := []struct {
		name string
		text string
		want error
	}{
		{"no prefix", text[len(EnrollmentTextPrefix):], ErrMalformed},
		{"not base64", EnrollmentTextPrefix + "@@@", ErrMalformed},
		{"truncated", text[:len(text)-10], ErrMalformed},
		{"key swapped, signed by someone else", forgedText, ErrThresholdNotMet},
		{"device ID of another key", enrollmentText(t, &selfSigned, sk), ErrDeviceMismatch},
		{"too large", EnrollmentTextPrefix + strings.Repeat("A", 12000), ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseEnrollmentText(c.text, Limits{})
			wantErr(t, err, c.want)
		})
	}
}

func mustEnroll(t *testing.T) string {
	t.Helper()
	text, err := NewEnrollment(newSigningKey(t), newDeviceKey(t, crypto.KEMX25519), "", testNow)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

func enrollmentText(t *testing.T, e *Enrollment, k *crypto.SigningKey) string {
	t.Helper()
	payload, err := codecMarshal(e)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signPayload(EnrollmentPayloadType, payload, k)
	if err != nil {
		t.Fatal(err)
	}
	return EnrollmentTextPrefix + b64.EncodeToString(env)
}

func FuzzParseEnrollment(f *testing.F) {
	text, err := NewEnrollment(newSigningKey(f), newDeviceKey(f, crypto.KEMX25519), "x", testNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(text)
	f.Add(EnrollmentTextPrefix)
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseEnrollmentText(s, Limits{})
		if err != nil {
			return
		}
		pub, err := e.PublicKey()
		if err != nil || DeviceIDOf(pub) != e.Device {
			t.Fatal("accepted an enrollment whose ID is not its key's")
		}
	})
}
