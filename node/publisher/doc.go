// Package publisher is the publisher's side of meshota: its directory of
// keys, trust roots, channel secrets, keyrings and release records, and the
// operations of the publisher's CLI commands (init, fleet add/revoke,
// publish, rollout, rollback, bundle) as library calls.
//
// Layout of a publisher directory (every secret file is mode 0600):
//
//	keys/root.key, keys/release.key   Ed25519 signing keys
//	roots/NNNN.root                    signed trust roots, version NNNN
//	channels/C/secret                  the channel secret (chunk keys)
//	channels/C/state                   keyring (epoch keys), enrollments,
//	                                   releases with their release keys
//	store/                             every block published (for deltas
//	                                   and for writing bundles)
package publisher
