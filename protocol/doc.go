// Package protocol defines meshota's wire and on-disk documents — manifest,
// keyring (root and shards), status report, device enrollment record and
// the catch-up requests — together with their gossipsub topics, libp2p
// protocol IDs, bounds and validation rules.
//
// Every document is deterministic CBOR (protocol/codec). Signed documents
// travel in crypto's signature envelopes and are verified over the exact
// bytes received, never re-encoded first.
//
// Validation is pure: ValidateManifest, ValidateStatusReport,
// ParseEnrollment, ParseKeyringRoot and ParseKeyringShard take bytes,
// trusted state, a time and Limits, and return a decoded document or an
// error that wraps exactly one of the sentinels in errors.go. They do no I/O
// and keep no hidden state; recording an accepted manifest is a separate,
// explicit step (TrustedState.Accept). node/ does the I/O and decides what
// to do with each verdict.
//
// docs/PROTOCOL.md is the normative description (fields, limits, order of
// checks, test vectors in testdata/); docs/SECURITY.md maps attacks to the
// rules and tests here.
package protocol
