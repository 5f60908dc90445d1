package protocol

import (
	"bytes"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/meshota/meshota/protocol/codec"
)

// State is what a device reports about a release.
type State uint8

// States, as on the wire. Zero is not a valid state.
const (
	StateDownloading State = 1
	StateInstalled   State = 2
	StateFailed      State = 3
	StateRolledBack  State = 4
)

func (s State) String() string {
	switch s {
	case StateDownloading:
		return "downloading"
	case StateInstalled:
		return "installed"
	case StateFailed:
		return "failed"
	case StateRolledBack:
		return "rolled-back"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// StatusReport is what a device says about the release it runs or tries
// to run. Its payload is signed by the device's own signing key
// (StatusPayloadType).
type StatusReport struct {
	Device   DeviceID  `cbor:"1,keyasint"`
	Channel  string    `cbor:"2,keyasint"`
	Sequence uint64    `cbor:"3,keyasint"` // manifest sequence concerned
	Version  string    `cbor:"4,keyasint"` // version running (or being fetched)
	State    State     `cbor:"5,keyasint"`
	Error    string    `cbor:"6,keyasint,omitempty"` // why, for failed and rolled-back
	Time     time.Time `cbor:"7,keyasint"`           // when the report was made
	// Counters for the release concerned.
	BytesFromPeers uint64 `cbor:"8,keyasint,omitempty"`
	BytesFromSeed  uint64 `cbor:"9,keyasint,omitempty"`
	DurationMillis uint64 `cbor:"10,keyasint,omitempty"`
	// BytesFromLAN is the part of what came from peers that came from
	// peers on the device's own LAN (found by mDNS).
	BytesFromLAN uint64 `cbor:"11,keyasint,omitempty"`
	// Alarms, repeated in every report while they hold.
	// ManifestExpired: the newest manifest the device accepted has expired
	// and no newer one reached it: it may be cut off from updates (a
	// frozen device; docs/SECURITY.md row 3).
	ManifestExpired bool `cbor:"12,keyasint,omitempty"`
	// Equivocation: the device was offered a second, different manifest
	// with the sequence of one it accepted (row 13).
	Equivocation *Equivocation `cbor:"13,keyasint,omitempty"`
}

// Equivocation is what a device saw of two different signed manifests of
// its channel with one sequence: the payload digests of both.
type Equivocation struct {
	Sequence uint64 `cbor:"1,keyasint"`
	Accepted []byte `cbor:"2,keyasint"` // SHA-256 of the payload accepted first
	Offered  []byte `cbor:"3,keyasint"` // SHA-256 of the conflicting payload
}

// EquivocationOf is the report form of an *EquivocationError.
func EquivocationOf(e *EquivocationError) *Equivocation {
	return &Equivocation{Sequence: e.Sequence, Accepted: e.Accepted[:], Offered: e.Received[:]}
}

// EncodeStatusReport checks r and returns its payload bytes (to sign).
func EncodeStatusReport(r *StatusReport, l Limits) ([]byte, error) {
	c := *r
	c.Time = c.Time.Truncate(time.Second).UTC()
	if err := c.check(l.withDefaults()); err != nil {
		return nil, err
	}
	return codec.Marshal(&c)
}

func decodeStatusPayload(payload []byte, l Limits) (*StatusReport, error) {
	var r StatusReport
	if err := codec.Unmarshal(payload, &r, codec.Limits{MaxBytes: l.MaxReportBytes, MaxElements: 16}); err != nil {
		return nil, fmt.Errorf("%w: status report: %v", ErrMalformed, err)
	}
	if err := r.check(l); err != nil {
		return nil, err
	}
	return &r, nil
}

func (r *StatusReport) check(l Limits) error {
	if r.BytesFromLAN > r.BytesFromPeers {
		return fmt.Errorf("%w: %d bytes from LAN peers exceed the %d from all peers", ErrInvalidField, r.BytesFromLAN, r.BytesFromPeers)
	}
	if err := ValidateChannel(r.Channel); err != nil {
		return fmt.Errorf("status report: %w", err)
	}
	if len(r.Version) > l.MaxVersionLen {
		return fmt.Errorf("%w: version is %d bytes, limit %d", ErrLimitExceeded, len(r.Version), l.MaxVersionLen)
	}
	if r.Version != "" { // a device that never installed anything has none
		if err := ValidateVersion(r.Version); err != nil {
			return fmt.Errorf("status report: %w", err)
		}
	}
	if r.State < StateDownloading || r.State > StateRolledBack {
		return fmt.Errorf("%w: unknown state %d", ErrInvalidField, r.State)
	}
	if len(r.Error) > l.MaxErrorLen {
		return fmt.Errorf("%w: error string is %d bytes, limit %d", ErrLimitExceeded, len(r.Error), l.MaxErrorLen)
	}
	if !utf8.ValidString(r.Error) {
		return fmt.Errorf("%w: error string is not UTF-8", ErrInvalidField)
	}
	if r.Time.IsZero() {
		return fmt.Errorf("%w: status report without a time", ErrInvalidField)
	}
	if e := r.Equivocation; e != nil {
		if len(e.Accepted) != 32 || len(e.Offered) != 32 || bytes.Equal(e.Accepted, e.Offered) {
			return fmt.Errorf("%w: equivocation needs two different 32-byte digests", ErrInvalidField)
		}
	}
	return nil
}

// checkReportTime refuses reports from the future (beyond the clock skew)
// and reports older than MaxReportAge (replays).
func checkReportTime(t, now time.Time, l Limits) error {
	if t.After(now.Add(l.MaxClockSkew)) {
		return fmt.Errorf("%w: report made at %s, now is %s", ErrNotYetValid, t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.Sub(t) > l.MaxReportAge {
		return fmt.Errorf("%w: report made at %s is older than %s", ErrExpired, t.UTC().Format(time.RFC3339), l.MaxReportAge)
	}
	return nil
}
