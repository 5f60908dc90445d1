package content

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/meshota/meshota/protocol/codec"
)

type progress struct {
	Index [32]byte `cbor:"1,keyasint"`
	Done  uint64   `cbor:"2,keyasint"` // entries complete and synced
}

// loadProgress returns how many entries of the index id are complete; 0
// when there is no progress file or it belongs to another index.
func loadProgress(path string, id [32]byte) (uint64, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var p progress
	if err := codec.Unmarshal(data, &p, codec.DefaultLimits); err != nil {
		return 0, err
	}
	if p.Index != id {
		return 0, nil
	}
	return p.Done, nil
}

// saveProgress makes everything written so far durable, then records done
// atomically (temp file, fsync, rename, fsync of the directory).
func saveProgress(path string, id [32]byte, done uint64) error {
	syscall.Sync() // the staged files written since the last save
	data, err := codec.Marshal(&progress{Index: id, Done: done})
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("save assembly progress: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("save assembly progress: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
