// Package statefile keeps small documents (the agent's state, the seed's
// records) on disk so that power loss at any instant leaves either the old
// or the new version, and a damaged file is detected rather than trusted.
//
// A write goes to a temporary file in the same directory, is fsynced,
// renamed over the old file, and the directory is fsynced. The file holds
// the document's CBOR encoding followed by its SHA-256, so truncation or a
// flipped bit reads as ErrCorrupt, never as a plausible older state.
package statefile
