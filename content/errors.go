package content

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

var (
	// ErrUnsafePath reports a release path that is absolute, contains "..",
	// is not clean, or otherwise could escape the install directory.
	ErrUnsafePath = errors.New("unsafe path in release")
	// ErrDuplicatePath reports a release that lists the same path twice.
	ErrDuplicatePath = errors.New("duplicate path in release")
	// ErrUnsupportedFile reports a file type a release cannot carry (device,
	// socket, named pipe) or a symlink pointing outside the release tree.
	ErrUnsupportedFile = errors.New("unsupported file in release")
	// ErrBlockMismatch reports a block whose bytes do not hash to its CID.
	ErrBlockMismatch = errors.New("block does not match its CID")
	// ErrBlockMissing reports a block the source could not deliver.
	ErrBlockMissing = errors.New("block not available")
	// ErrChunkCorrupt reports a chunk that failed authenticated decryption
	// or whose plaintext does not match the hash listed in the index.
	ErrChunkCorrupt = errors.New("chunk failed verification")
	// ErrIndexKey reports an index that cannot be decrypted: wrong release
	// key, wrong channel, or altered index bytes.
	ErrIndexKey = errors.New("cannot decrypt release index")
	// ErrIndexMalformed reports an index that decrypts but is inconsistent
	// (bad counts, ranges, CIDs or sizes).
	ErrIndexMalformed = errors.New("malformed release index")
	// ErrBlockListMalformed reports a cleartext block list that does not
	// decode or is not sorted.
	ErrBlockListMalformed = errors.New("malformed block list")
	// ErrStagingIncomplete reports a staging tree that differs from the
	// index (missing, extra or altered entries).
	ErrStagingIncomplete = errors.New("staging tree is not the release")
)

// BlockError says which block failed and why; it wraps ErrBlockMismatch,
// ErrBlockMissing or ErrChunkCorrupt.
type BlockError struct {
	CID   cid.Cid
	Err   error
	local bool // the block came from the local store, not the source
}

func (e *BlockError) Error() string { return fmt.Sprintf("block %s: %v", e.CID, e.Err) }
func (e *BlockError) Unwrap() error { return e.Err }
