// Package content turns a release (a file or a directory tree) into
// encrypted, content-addressed blocks and back.
//
// Publishing walks the release, cuts every regular file into content-defined
// chunks (boxo's buzhash boundaries, cut by this package's faster
// splitter), encrypts each chunk with the convergent
// chunk encryption of meshota/crypto and stores it as a raw CIDv1 SHA2-256
// block. The tree metadata and the ordered chunk list form the release
// index, encrypted under a fresh release key and paged into blocks. A
// cleartext block list (every block CID of the release, sorted) lets holders
// without keys pin, garbage-collect and prefetch the release.
//
// Assembling opens the index (keeping its entries and streaming its chunk
// list page by page), fetches the missing blocks in windows from a
// BlockSource (the local store, or bitswap through a blockservice),
// verifies each against its CID, decrypts and authenticates it on all
// cores, writes the tree into a staging directory in index order and
// stores the verified blocks in batches. It resumes after interruption:
// verified blocks stay in the store and are never fetched again.
//
// The on-disk blockstore with pins and garbage collection lives in
// content/store. docs/CONTENT.md gives formats, sizes and measured figures.
package content
