package content

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// walkRelease calls fn for every entry of the release at src, in index
// order: a single regular file yields one entry named after it; a directory
// yields its contents (not itself) depth first, names sorted, each parent
// before its children. Paths, symlinks and file types are checked here, so
// an unsafe release is refused before anything is stored.
func walkRelease(ctx context.Context, src string, fn func(e Entry, abs string) error) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("release source: %w", err)
	}
	switch {
	case fi.Mode().IsRegular():
		name := filepath.Base(src)
		if err := CheckPath(name); err != nil {
			return err
		}
		return fn(Entry{Path: name, Type: TypeFile, Mode: uint32(fi.Mode().Perm()), Size: uint64(fi.Size())}, src)
	case fi.IsDir():
	default:
		return fmt.Errorf("%w: release source %s is a %v; publish a regular file or a directory", ErrUnsupportedFile, src, fi.Mode().Type())
	}
	return filepath.WalkDir(src, func(abs string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read release tree: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if abs == src {
			return nil
		}
		rel, err := filepath.Rel(src, abs)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if err := CheckPath(rel); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("read release tree: %w", err)
		}
		e := Entry{Path: rel, Mode: uint32(info.Mode().Perm())}
		switch t := info.Mode().Type(); {
		case t == 0:
			e.Type, e.Size = TypeFile, uint64(info.Size())
		case t == fs.ModeDir:
			e.Type = TypeDir
		case t == fs.ModeSymlink:
			e.Type, e.Mode = TypeSymlink, 0o777
			if e.Target, err = os.Readlink(abs); err != nil {
				return fmt.Errorf("read release tree: %w", err)
			}
			if err := CheckSymlink(rel, e.Target); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: %s is a %v; a release holds only regular files, directories and symlinks", ErrUnsupportedFile, rel, t)
		}
		return fn(e, abs)
	})
}
