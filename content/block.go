package content

import (
	"crypto/sha256"
	"fmt"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/meshota/meshota/crypto"
)

// Chunk sizes of boxo's buzhash chunker, which content uses (see
// docs/CONTENT.md for the measurement behind the choice). The largest
// encrypted chunk, MaxChunkSize+crypto.ChunkOverhead, stays far below
// bitswap's 2 MiB block limit.
const (
	MinChunkSize = 128 << 10
	AvgChunkSize = 256 << 10
	MaxChunkSize = 512 << 10
)

// MaxBlockSize is the largest block content writes or accepts.
const MaxBlockSize = 1 << 20

// RawCID returns the CIDv1 (raw codec, SHA2-256) of data.
func RawCID(data []byte) cid.Cid {
	sum := sha256.Sum256(data)
	h, err := mh.Encode(sum[:], mh.SHA2_256)
	if err != nil {
		panic(err) // sha2-256 with 32 bytes cannot fail
	}
	return cid.NewCidV1(cid.Raw, h)
}

// newRawBlock addresses data by RawCID without hashing it twice.
func newRawBlock(data []byte) blocks.Block {
	b, err := blocks.NewBlockWithCid(data, RawCID(data))
	if err != nil {
		panic(err) // only fails when the CID does not match, which it does
	}
	return b
}

// VerifyBlock checks that data hashes to want, a raw SHA2-256 CIDv1, and is
// within MaxBlockSize. Call it on every block from an untrusted source.
func VerifyBlock(want cid.Cid, data []byte) error {
	if err := checkBlockForm(want, len(data)); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	if d := want.Hash(); string(d[len(d)-32:]) != string(sum[:]) {
		return &BlockError{CID: want, Err: fmt.Errorf("%w: %d bytes hash to %x", ErrBlockMismatch, len(data), sum[:8])}
	}
	return nil
}

// checkBlockForm is what VerifyBlock checks besides the hash: want is a
// raw SHA2-256 CIDv1 and n bytes are within MaxBlockSize.
func checkBlockForm(want cid.Cid, n int) error {
	if err := checkRawCID(want); err != nil {
		return &BlockError{CID: want, Err: fmt.Errorf("%w: %v", ErrBlockMismatch, err)}
	}
	if n > MaxBlockSize {
		return &BlockError{CID: want, Err: fmt.Errorf("%w: %d bytes exceeds %d", ErrBlockMismatch, n, MaxBlockSize)}
	}
	return nil
}

// sealChunk encrypts one plaintext chunk and returns its index record and
// its block.
func sealChunk(secret *crypto.ChannelSecret, channel string, plain []byte) (Chunk, blocks.Block) {
	return sealChunkTo(make([]byte, 0, len(plain)+crypto.ChunkOverhead), secret, channel, plain)
}

// sealChunkTo is sealChunk with the block's bytes in dst's memory.
func sealChunkTo(dst []byte, secret *crypto.ChannelSecret, channel string, plain []byte) (Chunk, blocks.Block) {
	h := crypto.HashChunk(plain)
	k := crypto.DeriveChunkKey(secret, h)
	ct := crypto.SealChunk(dst[:0], &k, channel, plain)
	b := newRawBlock(ct)
	return Chunk{CID: b.Cid(), Hash: h, Len: uint32(len(plain)), Key: k}, b
}
