package content

import (
	"fmt"
	"golang.org/x/sys/unix"
	"os"
	"path/filepath"

	"github.com/meshota/meshota/content/atomicfile"
	"github.com/meshota/meshota/protocol/codec"
)

type progress struct {
	Index [32]byte `cbor:"1,keyasint"`
	Done  uint64   `cbor:"2,keyasint"` // entries complete and synced
}

// loadProgress returns how many entries of the index id are complete,
// and whether the progress file is id's (staging holds its work); 0 and
// false when there is no progress file or it belongs to another index.
func loadProgress(path string, id [32]byte) (uint64, bool, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	var p progress
	if err := codec.Unmarshal(data, &p, codec.DefaultLimits); err != nil {
		return 0, false, err
	}
	if p.Index != id {
		return 0, false, nil
	}
	return p.Done, true, nil
}

// saveProgress makes everything written to staging so far durable (one
// syncfs of its filesystem, not a sync of the whole machine), then records
// done atomically.
func saveProgress(path string, id [32]byte, done uint64) error {
	if err := syncFS(filepath.Dir(path)); err != nil {
		return fmt.Errorf("save assembly progress: %w", err)
	}
	data, err := codec.Marshal(&progress{Index: id, Done: done})
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("save assembly progress: %w", err)
	}
	return nil
}

// syncFS flushes the filesystem holding dir.
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
