package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func baseReport() *StatusReport {
	return &StatusReport{
		Device:         fakeIDs(1)[0],
		Channel:        "stable",
		Sequence:       7,
		Version:        "1.4.0",
		State:          StateFailed,
		Error:          "health check: exit status 3",
		Time:           testNow.Add(-time.Minute),
		BytesFromPeers: 9 << 20,
		BytesFromSeed:  1 << 20,
		DurationMillis: 4200,
	}
}

func TestStatusReportFieldRules(t *testing.T) {
	cases := []struct {
		name string
		mut  func(*StatusReport)
		want error
	}{
		{"valid", func(*StatusReport) {}, nil},
		{"no version yet", func(r *StatusReport) { r.Version = "" }, nil},
		{"bad channel", func(r *StatusReport) { r.Channel = "" }, ErrInvalidField},
		{"bad version", func(r *StatusReport) { r.Version = "one" }, ErrInvalidField},
		{"long version", func(r *StatusReport) { r.Version = "1.0.0-" + strings.Repeat("x", 80) }, ErrLimitExceeded},
		{"state zero", func(r *StatusReport) { r.State = 0 }, ErrInvalidField},
		{"state five", func(r *StatusReport) { r.State = 5 }, ErrInvalidField},
		{"long error", func(r *StatusReport) { r.Error = strings.Repeat("e", DefaultLimits.MaxErrorLen+1) }, ErrLimitExceeded},
		{"no time", func(r *StatusReport) { r.Time = time.Time{} }, ErrInvalidField},
		{"LAN share of peer bytes", func(r *StatusReport) { r.BytesFromPeers, r.BytesFromLAN = 10, 7 }, nil},
		{"more LAN than peer bytes", func(r *StatusReport) { r.BytesFromPeers, r.BytesFromLAN = 10, 11 }, ErrInvalidField},
		{"frozen", func(r *StatusReport) { r.ManifestExpired = true }, nil},
		{"equivocation", func(r *StatusReport) {
			r.Equivocation = &Equivocation{Sequence: 7, Accepted: digest(1), Offered: digest(2)}
		}, nil},
		{"equivocation, short digest", func(r *StatusReport) {
			r.Equivocation = &Equivocation{Sequence: 7, Accepted: digest(1)[:31], Offered: digest(2)}
		}, ErrInvalidField},
		{"equivocation, one digest twice", func(r *StatusReport) {
			r.Equivocation = &Equivocation{Sequence: 7, Accepted: digest(1), Offered: digest(1)}
		}, ErrInvalidField},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := baseReport()
			c.mut(r)
			payload, err := EncodeStatusReport(r, Limits{})
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("EncodeStatusReport = %v, want %v", err, c.want)
			}
			if err != nil {
				return
			}
			back, err := decodeStatusPayload(payload, DefaultLimits)
			if err != nil || back.Error != r.Error || back.State != r.State || !back.Time.Equal(r.Time) ||
				back.ManifestExpired != r.ManifestExpired || (back.Equivocation == nil) != (r.Equivocation == nil) {
				t.Fatalf("round trip: %+v, %v", back, err)
			}
		})
	}
}

func TestReportTimeRules(t *testing.T) {
	l := DefaultLimits
	cases := []struct {
		name string
		t    time.Time
		want error
	}{
		{"now", testNow, nil},
		{"within skew", testNow.Add(l.MaxClockSkew), nil},
		{"future", testNow.Add(l.MaxClockSkew + time.Second), ErrNotYetValid},
		{"old but allowed", testNow.Add(-l.MaxReportAge), nil},
		{"replayed from long ago", testNow.Add(-l.MaxReportAge - time.Second), ErrExpired},
	}
	for _, c := range cases {
		if err := checkReportTime(c.t, testNow, l); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestStateNames(t *testing.T) {
	want := map[State]string{StateDownloading: "downloading", StateInstalled: "installed", StateFailed: "failed", StateRolledBack: "rolled-back", 9: "state(9)"}
	for s, n := range want {
		if s.String() != n {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), n)
		}
	}
}

func digest(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
