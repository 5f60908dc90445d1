package protocol

import (
	"errors"
	"fmt"
)

// Every validation rule has its own sentinel so that callers can tell the
// rules apart (errors.Is), map them to a gossip verdict and log a clear
// reason. docs/PROTOCOL.md lists them in the order they are checked.
var (
	// ErrTooLarge: the message is longer than its limit. It was refused
	// before any parsing. Nothing to fix on the receiving side; the sender
	// is misbehaving or its limits differ from ours.
	ErrTooLarge = errors.New("message too large")
	// ErrMalformed: the bytes are not the canonical encoding of the expected
	// document (or not a signature envelope).
	ErrMalformed = errors.New("malformed message")
	// ErrWrongPayloadType: a well-formed envelope carries another kind of
	// document than the one expected here (a report where a manifest was
	// expected, say).
	ErrWrongPayloadType = errors.New("wrong payload type")
	// ErrLimitExceeded: a field exceeds a configured bound (release size,
	// block count, string length, shard entries, chain length).
	ErrLimitExceeded = errors.New("limit exceeded")
	// ErrInvalidField: a field holds a value outside its domain (bad channel
	// name, version, CID, rollout share, inconsistent times).
	ErrInvalidField = errors.New("invalid field")
	// ErrBadSignature: the envelope's signatures could not be verified at
	// all (crypto refused them).
	ErrBadSignature = errors.New("bad signature")
	// ErrThresholdNotMet: too few valid signatures by keys of the required
	// role of the current trust root.
	ErrThresholdNotMet = errors.New("signature threshold not met")
	// ErrOldRoot: the document names an older trust root and its signatures
	// do not meet the current root's threshold: it was signed by keys that
	// have since been rotated out. The publisher must re-sign it.
	ErrOldRoot = errors.New("signed under a superseded trust root")
	// ErrRootAhead: the document names a trust root newer than ours. Fetch
	// the trust-root chain (ProtocolRootChain) and retry.
	ErrRootAhead = errors.New("signed under a newer trust root than ours")
	// ErrWrongChannel: the manifest's channel is not the channel of the
	// topic it arrived on, or a keyring or report names another channel.
	ErrWrongChannel = errors.New("wrong channel")
	// ErrStaleSequence: the sequence is lower than the highest already
	// accepted for the channel (rollback attempt or stale replay).
	ErrStaleSequence = errors.New("stale sequence number")
	// ErrDuplicate: exactly the manifest already accepted (same sequence,
	// same content). Not an attack; ignore it without penalty.
	ErrDuplicate = errors.New("manifest already accepted")
	// ErrEquivocation: same sequence as an accepted manifest but different
	// content, both validly signed. Evidence of a compromised or buggy
	// publisher: log it loudly (the error is an *EquivocationError).
	ErrEquivocation = errors.New("equivocation: two different manifests with the same sequence")
	// ErrDowngrade: a manifest without the rollback flag carries a lower
	// version than the one accepted before it. Publish rollbacks with the
	// rollback flag.
	ErrDowngrade = errors.New("version downgrade without rollback flag")
	// ErrExpired: the document's expiry is in the past (freeze attack, or a
	// publisher that stopped re-signing). Check the local clock.
	ErrExpired = errors.New("expired")
	// ErrExpiryTooFar: the expiry is further in the future than the
	// configured maximum allows.
	ErrExpiryTooFar = errors.New("expiry too far in the future")
	// ErrNotYetValid: the creation time is in the future beyond the allowed
	// clock skew. Check the local clock.
	ErrNotYetValid = errors.New("not yet valid")
	// ErrCIDMismatch: fetched bytes do not hash to the CID that the signed
	// chain of references names.
	ErrCIDMismatch = errors.New("content does not match its CID")
	// ErrKeyringMismatch: a keyring root or shard names another channel,
	// epoch or shard position than the reference that led to it.
	ErrKeyringMismatch = errors.New("keyring does not match its reference")
	// ErrNotInKeyring: the device has no entry in the keyring shard: it is
	// not enrolled in this epoch (never enrolled, or revoked).
	ErrNotInKeyring = errors.New("device not in keyring")
	// ErrUnknownDevice: a status report from a device that is not enrolled.
	ErrUnknownDevice = errors.New("unknown device")
	// ErrDeviceMismatch: the device ID in a document is not the one derived
	// from the key that signed it.
	ErrDeviceMismatch = errors.New("device ID does not match signing key")
	// ErrNotValidated: TrustedState.Accept was given a manifest that did
	// not come out of ValidateManifest.
	ErrNotValidated = errors.New("manifest was not validated")
	// ErrRootUpdate: a trust-root update was refused (see the wrapped crypto
	// error: bad signatures, version not increasing, expired).
	ErrRootUpdate = errors.New("trust root update refused")
)

// EquivocationError carries both digests of an equivocation so that it can
// be logged and reported as evidence.
type EquivocationError struct {
	Channel  string
	Sequence uint64
	Accepted [32]byte // SHA-256 of the payload accepted first
	Received [32]byte // SHA-256 of the conflicting payload
}

func (e *EquivocationError) Error() string {
	return fmt.Sprintf("%v: channel %q sequence %d: accepted payload sha256 %x, received %x; the publisher's release keys may be compromised",
		ErrEquivocation, e.Channel, e.Sequence, e.Accepted[:8], e.Received[:8])
}

// Unwrap makes errors.Is(err, ErrEquivocation) hold.
func (e *EquivocationError) Unwrap() error { return ErrEquivocation }

// Penalises tells whether a validation error blames the peer that sent the
// message: forgeries, malformed or oversized messages do; messages that are
// merely stale, expired, not yet valid, signed under a root the receiver
// lacks, or evidence of a publisher's equivocation do not (an honest peer
// can relay those). Gossip rejects the first kind, which lowers the
// sender's score, and ignores the second.
func Penalises(err error) bool {
	for _, e := range []error{ErrDuplicate, ErrStaleSequence, ErrExpired, ErrNotYetValid,
		ErrRootAhead, ErrEquivocation, ErrDowngrade, ErrUnknownDevice} {
		if errors.Is(err, e) {
			return false
		}
	}
	return err != nil
}
