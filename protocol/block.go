package protocol

import (
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// Block is a content-addressed block as node/ stores and exchanges it: a
// raw CIDv1 with a SHA2-256 multihash, and the bytes that hash to it.
type Block struct {
	CID  cid.Cid
	Data []byte
}

// NewBlock addresses data: CIDv1, codec raw (0x55), SHA2-256.
func NewBlock(data []byte) Block {
	return Block{CID: RawCID(data), Data: data}
}

// RawCID returns the raw CIDv1 SHA2-256 of data.
func RawCID(data []byte) cid.Cid {
	h, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		panic(err) // SHA2-256 is always available
	}
	return cid.NewCidV1(cid.Raw, h)
}

// checkContentCID accepts what meshota uses for content addresses: CIDv1,
// codec raw, SHA2-256 with a 32-byte digest.
func checkContentCID(field string, c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("%w: %s: missing CID", ErrInvalidField, field)
	}
	p := c.Prefix()
	if p.Version != 1 || p.MhType != mh.SHA2_256 || p.MhLength != 32 {
		return fmt.Errorf("%w: %s: CID %s must be CIDv1 with a SHA2-256 multihash", ErrInvalidField, field, c)
	}
	if p.Codec != cid.Raw {
		return fmt.Errorf("%w: %s: CID %s has codec 0x%x, want raw (0x55)", ErrInvalidField, field, c, p.Codec)
	}
	return nil
}

// checkBlock verifies that data hashes to want (a raw CIDv1 SHA2-256).
func checkBlock(what string, want cid.Cid, data []byte) error {
	if got := RawCID(data); !got.Equals(want) {
		return fmt.Errorf("%w: %s: bytes hash to %s, expected %s", ErrCIDMismatch, what, got, want)
	}
	return nil
}
