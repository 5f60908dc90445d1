package protocol

import (
	"fmt"
	"time"
)

// ChannelMark is what a node remembers of the last manifest it accepted on
// a channel: enough to refuse older ones, detect equivocation and refuse
// silent downgrades.
type ChannelMark struct {
	Sequence uint64   `cbor:"1,keyasint"`
	Digest   [32]byte `cbor:"2,keyasint"` // SHA-256 of the accepted payload
	Version  string   `cbor:"3,keyasint"`
}

// checkFreshness applies the anti-rollback rules against the mark of the
// manifest's channel (have is false when nothing was accepted yet).
func checkFreshness(mark ChannelMark, have bool, m *Manifest) error {
	if !have {
		return nil
	}
	switch {
	case m.Sequence < mark.Sequence:
		return fmt.Errorf("%w: channel %q sequence %d, already accepted %d", ErrStaleSequence, m.Channel, m.Sequence, mark.Sequence)
	case m.Sequence == mark.Sequence && m.digest == mark.Digest:
		return fmt.Errorf("%w: channel %q sequence %d", ErrDuplicate, m.Channel, m.Sequence)
	case m.Sequence == mark.Sequence:
		return &EquivocationError{Channel: m.Channel, Sequence: m.Sequence, Accepted: mark.Digest, Received: m.digest}
	}
	if !m.Rollback && mark.Version != "" {
		c, err := CompareVersions(m.Version, mark.Version)
		if err == nil && c < 0 {
			return fmt.Errorf("%w: channel %q sequence %d installs %s after %s", ErrDowngrade, m.Channel, m.Sequence, m.Version, mark.Version)
		}
	}
	return nil
}

// checkManifestTime applies the anti-freeze rules.
func checkManifestTime(m *Manifest, now time.Time, l Limits) error {
	if m.Created.After(now.Add(l.MaxClockSkew)) {
		return fmt.Errorf("%w: manifest created %s, now is %s", ErrNotYetValid, m.Created.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if !now.Before(m.Expires) {
		return fmt.Errorf("%w: manifest %q #%d expired at %s (now %s); the publisher must re-sign it", ErrExpired, m.Channel, m.Sequence, m.Expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if m.Expires.Sub(now) > l.MaxExpiry {
		return fmt.Errorf("%w: manifest expires %s, more than %s ahead", ErrExpiryTooFar, m.Expires.UTC().Format(time.RFC3339), l.MaxExpiry)
	}
	return nil
}
