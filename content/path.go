package content

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// MaxPathLen bounds a release path in bytes; longer paths are refused.
const MaxPathLen = 4096

// CheckPath reports whether p is a safe release path: relative, slash
// separated, clean (no "", ".", ".." or repeated separators), valid UTF-8,
// without NUL or backslash, at most MaxPathLen bytes. Every path the index
// holds passes CheckPath, so joining it to an install directory can never
// leave that directory.
func CheckPath(p string) error {
	switch {
	case p == "" || p == ".":
		return fmt.Errorf("%w: empty path", ErrUnsafePath)
	case len(p) > MaxPathLen:
		return fmt.Errorf("%w: path of %d bytes exceeds %d", ErrUnsafePath, len(p), MaxPathLen)
	case !utf8.ValidString(p):
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrUnsafePath, p)
	case strings.ContainsAny(p, "\x00\\"):
		return fmt.Errorf("%w: %q contains NUL or backslash", ErrUnsafePath, p)
	case path.IsAbs(p):
		return fmt.Errorf("%w: %q is absolute", ErrUnsafePath, p)
	case path.Clean(p) != p:
		return fmt.Errorf("%w: %q is not in clean form (want %q)", ErrUnsafePath, p, path.Clean(p))
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." || el == "." {
			return fmt.Errorf("%w: %q has a %q element", ErrUnsafePath, p, el)
		}
	}
	return nil
}

// CheckSymlink reports whether a symlink at link (a checked release path)
// with the given target stays inside the release tree: the target must be
// relative and clean, may start with ".." elements only, and resolved
// lexically from the link's directory must not leave the tree. Because
// every parent of an index entry is a real directory of the index (see
// Index validation), lexical resolution equals what the kernel does.
func CheckSymlink(link, target string) error {
	if err := CheckPath(link); err != nil {
		return err
	}
	switch {
	case target == "" || len(target) > MaxPathLen:
		return fmt.Errorf("%w: symlink %q has an empty or too long target", ErrUnsupportedFile, link)
	case !utf8.ValidString(target) || strings.ContainsAny(target, "\x00\\"):
		return fmt.Errorf("%w: symlink %q target %q has invalid characters", ErrUnsupportedFile, link, target)
	case path.IsAbs(target):
		return fmt.Errorf("%w: symlink %q points to absolute path %q; use a relative target inside the release", ErrUnsupportedFile, link, target)
	case path.Clean(target) != target:
		return fmt.Errorf("%w: symlink %q target %q is not in clean form", ErrUnsupportedFile, link, target)
	}
	seenName := false
	for _, el := range strings.Split(target, "/") {
		if el == ".." && seenName {
			return fmt.Errorf("%w: symlink %q target %q has \"..\" after a name", ErrUnsupportedFile, link, target)
		}
		if el != ".." {
			seenName = true
		}
	}
	resolved := path.Join(path.Dir(link), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return fmt.Errorf("%w: symlink %q points outside the release (%q)", ErrUnsupportedFile, link, target)
	}
	return nil
}
