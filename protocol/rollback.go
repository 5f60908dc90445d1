package protocol

import (
	"fmt"
	"time"
)

// NewRollback prepares the manifest that returns channel to the content of
// target (an earlier manifest of the channel): same index, block list and
// sizes, the given higher sequence, the rollback flag with target's version,
// and target's release key re-sealed under the current epoch (ks.Epoch) of
// the keyring ref. The caller signs it (SignManifest).
func NewRollback(target *Manifest, ks *KeyringState, ref KeyringRef, sequence, supersedes uint64, rootVersion uint64, created, expires time.Time) (*Manifest, error) {
	if target.Channel != ks.Channel || ref.Epoch != ks.Epoch {
		return nil, fmt.Errorf("%w: rollback of %q with the keyring of %q epoch %d (current %d)", ErrKeyringMismatch, target.Channel, ks.Channel, ref.Epoch, ks.Epoch)
	}
	if sequence <= target.Sequence {
		return nil, fmt.Errorf("%w: a rollback needs a sequence above %d, got %d", ErrStaleSequence, target.Sequence, sequence)
	}
	oldKey, ok := ks.EpochKey(target.Keyring.Epoch)
	if !ok {
		return nil, fmt.Errorf("%w: no key for epoch %d in the keyring state", ErrKeyringMismatch, target.Keyring.Epoch)
	}
	rk, err := OpenReleaseKey(target, &oldKey)
	if err != nil {
		return nil, err
	}
	m := *target
	m.Sequence, m.Supersedes, m.RootVersion = sequence, supersedes, rootVersion
	m.Created, m.Expires = created, expires
	m.Keyring = ref
	m.Rollback, m.RollbackTo = true, target.Version
	m.digest, m.validated = [32]byte{}, false
	cur := ks.EpochKeys[ks.Epoch-1]
	SealReleaseKey(&m, &cur, &rk)
	return &m, nil
}
