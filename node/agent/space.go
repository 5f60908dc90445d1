package agent

import (
	"context"
	"fmt"
	"syscall"

	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/protocol"
)

// StoreFreeSpace returns a Config.FreeSpace for the filesystem holding dir.
func StoreFreeSpace(dir string) func() (uint64, error) {
	return func() (uint64, error) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return 0, err
		}
		return st.Bavail * uint64(st.Bsize), nil
	}
}

// checkSpace estimates what the missing blocks of cids need (the release's
// mean block size times the blocks missing, plus 10% for the filesystem)
// and fails with ErrNoSpace if the store cannot hold it.
func (a *Agent) checkSpace(ctx context.Context, m *protocol.Manifest, cids []cid.Cid) error {
	if a.cfg.FreeSpace == nil || m.BlockCount == 0 {
		return nil
	}
	missing := 0
	for _, c := range cids {
		if has, err := a.cfg.Store.Has(ctx, c); err == nil && !has {
			missing++
		}
	}
	need := m.BlockBytes / m.BlockCount * uint64(missing)
	need += need / 10
	free, err := a.cfg.FreeSpace()
	if err != nil {
		return nil // cannot tell: let the writes decide
	}
	if free < need {
		return fmt.Errorf("%w: %d blocks still to fetch need about %d bytes, %d free; free some space and the download resumes", ErrNoSpace, missing, need, free)
	}
	return nil
}
