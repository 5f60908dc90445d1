package content

import (
	"bytes"
	"errors"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// TestVerifiedBlocksSkipOnlyTheirOwnHash: a block marked Verified is not
// hashed again for the CID it carries (its bytes were hashed to that CID
// in this process), but every other check still runs, and an unmarked
// block is always hashed.
func TestVerifiedBlocksSkipOnlyTheirOwnHash(t *testing.T) {
	good := bytes.Repeat([]byte{1}, 1000)
	other := bytes.Repeat([]byte{2}, 1000)
	goodCID, otherCID := RawCID(good), RawCID(other)
	sha1, err := mh.Sum(good, mh.SHA1, -1)
	if err != nil {
		t.Fatal(err)
	}
	sha1CID := cid.NewCidV1(cid.Raw, sha1)
	huge := make([]byte, MaxBlockSize+1)
	hugeCID := RawCID(huge)
	for _, tc := range []struct {
		name string
		want cid.Cid
		b    blocks.Block
		ok   bool
	}{
		{"unmarked, matching", goodCID, rawBlock{goodCID, good}, true},
		{"unmarked, other bytes", goodCID, rawBlock{goodCID, other}, false},
		// Trusted, not hashed: the mark says this process computed the
		// CID from these bytes.
		{"marked, its own CID", goodCID, Verified(rawBlock{goodCID, other}), true},
		{"marked, another CID", goodCID, Verified(rawBlock{otherCID, other}), false},
		{"marked twice, another CID", goodCID, Verified(Verified(rawBlock{otherCID, other})), false},
		{"marked, not SHA2-256", sha1CID, Verified(rawBlock{sha1CID, good}), false},
		{"marked, too large", hugeCID, Verified(rawBlock{hugeCID, huge}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyReceived(tc.want, tc.b)
			if tc.ok && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrBlockMismatch) {
				t.Fatalf("error = %v, want ErrBlockMismatch", err)
			}
		})
	}
}
