// Package bundle moves a signed release from the publisher to a seed as a
// CARv1 stream (go-car, as used by boxo): over the seed's admin API, or as
// a file for air-gapped transfer.
//
// The CAR's single root is a bundle document (deterministic CBOR, a raw
// block) carrying the signed manifest, the trust-root chain and the signed
// enrollment records of the channel's fleet; the other blocks are every
// block the manifest references: the block list, chunks and index pages,
// and the keyring. Nothing in a bundle is secret: chunks and index are
// encrypted, the keyring holds only sealed keys.
package bundle
