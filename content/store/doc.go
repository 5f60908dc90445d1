// Package store is meshota's on-disk blockstore: boxo's blockstore over a
// LevelDB datastore (go-ds-leveldb) with synced writes: a block is in the
// checksummed journal whole, or dropped at recovery, never half-stored; with
// release pins and garbage collection driven by each release's cleartext
// block list (content.ReadBlockList), so it works without any key.
package store
