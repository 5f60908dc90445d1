// Package store is meshota's on-disk blockstore: boxo's blockstore over a
// datastore appending blocks to pack files (one write and one fdatasync per
// batch; a torn tail is truncated at open, so a block is stored whole or
// not at all; the flat one-file-per-block layout of earlier versions and
// LevelDB remain available), with
// release pins and garbage collection driven by each release's cleartext
// block list (content.ReadBlockList), so it works without any key; GC also
// removes and rewrites packs that are mostly dead.
package store
