package statefile

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/meshota/meshota/content/atomicfile"
	"github.com/meshota/meshota/protocol/codec"
)

var (
	// ErrNotFound means no state was saved yet.
	ErrNotFound = errors.New("statefile: no saved state")
	// ErrCorrupt means the file exists but fails its checksum or does not
	// decode: it must be rebuilt, never trusted.
	ErrCorrupt = errors.New("statefile: corrupt state file")
)

// MaxSize bounds what Load reads.
const MaxSize = 16 << 20

// Save writes v to path atomically and durably.
func Save(path string, v any) error {
	data, err := codec.Marshal(v)
	if err != nil {
		return fmt.Errorf("statefile: encode %s: %w", path, err)
	}
	sum := sha256.Sum256(data)
	data = append(data, sum[:]...)
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("statefile: %w", err)
	}
	return nil
}

// Load reads what Save wrote into v.
func Load(path string, v any) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, path)
	}
	if err != nil {
		return fmt.Errorf("statefile: %w", err)
	}
	if len(data) < sha256.Size || len(data) > MaxSize {
		return fmt.Errorf("%w: %s has %d bytes", ErrCorrupt, path, len(data))
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return fmt.Errorf("%w: %s fails its checksum", ErrCorrupt, path)
	}
	if err := codec.Unmarshal(body, v, codec.Limits{MaxBytes: MaxSize, MaxElements: 1 << 20}); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	return nil
}
