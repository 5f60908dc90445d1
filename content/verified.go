package content

import (
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// Verified marks b as hashed against its CID in this process, so that
// content does not hash it a second time (docs/CONTENT.md, "One hash per
// block"):
// node/exchange marks the blocks bitswap received from the network, whose
// CID boxo's message decoder computed from their bytes. Mark nothing read
// from a disk or taken from another process: content's guarantee that
// every block it uses matches the manifest rests on it.
func Verified(b blocks.Block) blocks.Block {
	if _, ok := b.(verifiedBlock); ok {
		return b
	}
	return verifiedBlock{b}
}

// IsVerified reports whether b carries Verified's mark.
func IsVerified(b blocks.Block) bool {
	_, ok := b.(verifiedBlock)
	return ok
}

// verifiedBlock is a block whose CID was computed from its bytes in this
// process (Verified).
type verifiedBlock struct{ blocks.Block }

// verifyReceived is VerifyBlock for a block a source delivered for want:
// a block marked Verified whose CID is want needs no second hash, only
// the checks of want's form and of the block's size.
func verifyReceived(want cid.Cid, b blocks.Block) error {
	if !IsVerified(b) || !b.Cid().Equals(want) {
		return VerifyBlock(want, b.RawData())
	}
	return checkBlockForm(want, len(b.RawData()))
}
