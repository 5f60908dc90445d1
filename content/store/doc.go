// Package store is meshota's on-disk blockstore: boxo's blockstore over a
// flat one-file-per-block datastore (synced temporary file renamed into
// place, so a block is stored whole or not at all; LevelDB is available for
// comparison), with
// release pins and garbage collection driven by each release's cleartext
// block list (content.ReadBlockList), so it works without any key.
package store
