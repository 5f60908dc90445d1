package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/meshota/meshota/crypto"
)

// VerifyStaged checks that the tree at staging is exactly the release x:
// every entry present with its type, mode, symlink target and content
// (each chunk's plaintext hash), and nothing else. The agent calls it
// before the atomic swap. It reads each file once, one chunk at a time.
func VerifyStaged(ctx context.Context, x *Index, staging string) error {
	want := make(map[string]bool, len(x.Entries))
	buf := make([]byte, MaxChunkSize)
	chunks := x.cursor(ctx)
	for i := range x.Entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := &x.Entries[i]
		want[e.Path] = true
		p := filepath.Join(staging, filepath.FromSlash(e.Path))
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrStagingIncomplete, e.Path, err)
		}
		if got := entryTypeOf(fi.Mode()); got != e.Type {
			return fmt.Errorf("%w: %s is a %v, want %v", ErrStagingIncomplete, e.Path, got, e.Type)
		}
		if e.Type != TypeSymlink && uint32(fi.Mode().Perm()) != e.Mode {
			return fmt.Errorf("%w: %s has mode %o, want %o", ErrStagingIncomplete, e.Path, fi.Mode().Perm(), e.Mode)
		}
		switch e.Type {
		case TypeSymlink:
			if t, err := os.Readlink(p); err != nil || t != e.Target {
				return fmt.Errorf("%w: symlink %s points to %q, want %q", ErrStagingIncomplete, e.Path, t, e.Target)
			}
		case TypeFile:
			if uint64(fi.Size()) != e.Size {
				return fmt.Errorf("%w: %s has %d bytes, want %d", ErrStagingIncomplete, e.Path, fi.Size(), e.Size)
			}
			if err := verifyFile(p, chunks, e, buf); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrStagingIncomplete, e.Path, err)
			}
		}
	}

	err := filepath.WalkDir(staging, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == staging {
			return err
		}
		rel, _ := filepath.Rel(staging, p)
		if !want[filepath.ToSlash(rel)] {
			return fmt.Errorf("%w: unexpected %s", ErrStagingIncomplete, rel)
		}

		return nil
	})
	if err != nil {
		if errors.Is(err, ErrStagingIncomplete) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrStagingIncomplete, err)
	}
	return nil
}

func verifyFile(p string, chunks *chunkCursor, e *Entry, buf []byte) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	for i := range e.NumChunks {
		c, err := chunks.at(e.FirstChunk + i)
		if err != nil {
			return err
		}
		b := buf[:c.Len]
		if _, err := io.ReadFull(f, b); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
		if crypto.HashChunk(b) != c.Hash {
			return fmt.Errorf("chunk %d differs from the release", i)
		}
	}
	return nil
}

func entryTypeOf(m fs.FileMode) EntryType {
	switch m.Type() {
	case 0:
		return TypeFile
	case fs.ModeDir:
		return TypeDir
	case fs.ModeSymlink:
		return TypeSymlink
	}
	return 0
}
