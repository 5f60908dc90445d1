package protocol

import (
	"testing"

	"github.com/meshota/meshota/crypto"
)

// BenchmarkValidateManifest measures the whole validator against its
// dominant cost, the threshold signature check alone (baseline measured in
// the same benchmark): the ratio shows what decoding and the rules add.
func BenchmarkValidateManifest(b *testing.B) {
	f := newFixture(b)
	data := f.sign(b, baseManifest())
	env, err := crypto.ParseEnvelope(data, DefaultLimits.MaxManifestBytes)
	if err != nil {
		b.Fatal(err)
	}
	s := f.state()
	var base, full float64
	b.Run("verify-threshold-only", func(b *testing.B) {
		for b.Loop() {
			if err := crypto.VerifyThreshold(env, ManifestPayloadType, f.root.Keys, f.root.Roles[crypto.RoleRelease]); err != nil {
				b.Fatal(err)
			}
		}
		base = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("validate", func(b *testing.B) {
		for b.Loop() {
			if _, err := ValidateManifest(data, s, "stable", testNow, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
		full = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		if base > 0 {
			b.ReportMetric(full/base, "x-signature-check")
		}
	})
	b.Run("reject-oversized", func(b *testing.B) {
		big := make([]byte, DefaultLimits.MaxManifestBytes+1)
		for b.Loop() {
			ValidateManifest(big, s, "stable", testNow, Limits{})
		}
		if base > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/base, "x-signature-check")
		}
	})
}

func FuzzParseStoredState(f *testing.F) {
	fx := newFixture(f)
	st, _ := MarshalTrustedState(fx.state())
	ks, _ := NewKeyringState("stable")
	kb, _ := MarshalKeyringState(ks)
	f.Add(st)
	f.Add(kb)
	f.Fuzz(func(t *testing.T, data []byte) {
		if s, err := ParseTrustedState(data); err == nil && s.Root == nil {
			t.Fatal("trusted state without a root")
		}
		if k, err := ParseKeyringState(data); err == nil {
			if _, ok := k.EpochKey(k.Epoch); !ok {
				t.Fatal("keyring state without its current epoch key")
			}
		}
	})
}
