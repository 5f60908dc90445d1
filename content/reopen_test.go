package content

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReopenDirs: a run that stopped while applying the final directory
// modes leaves read-only directories on both sides of its recorded
// progress; a resumed run must make all of them writable (a non-root
// agent could not create their files otherwise), without following a
// symlink found where a directory should be.
func TestReopenDirs(t *testing.T) {
	staging, outside := t.TempDir(), t.TempDir()
	x := &Index{Channel: testChannel, Entries: []Entry{
		{Path: "a", Type: TypeDir, Mode: 0o555},
		{Path: "a/f", Type: TypeFile, Mode: 0o444},
		{Path: "b", Type: TypeDir, Mode: 0o555},
		{Path: "c", Type: TypeDir, Mode: 0o555},
		{Path: "d", Type: TypeDir, Mode: 0o555},
	}}
	const done = 2 // entries a and a/f recorded complete
	for _, d := range []string{"a", "b"} {
		if err := os.Mkdir(filepath.Join(staging, d), 0o555); err != nil {
			t.Fatal(err)
		}
	}
	// c is missing (not reached yet); d is a symlink a stopped run left.
	if err := os.Chmod(outside, 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(staging, "d")); err != nil {
		t.Fatal(err)
	}
	if err := reopenDirs(staging, x, done); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		want os.FileMode
	}{
		{filepath.Join(staging, "a"), 0o700}, // before done
		{filepath.Join(staging, "b"), 0o700}, // past done: the case that was missed
		{outside, 0o555},                     // not changed through the symlink
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != c.want {
			t.Errorf("%s: mode %o, want %o", c.path, got, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(staging, "c")); !os.IsNotExist(err) {
		t.Errorf("a missing directory past done was created: %v", err)
	}
	// A directory recorded complete must be there.
	if err := os.Remove(filepath.Join(staging, "a")); err != nil {
		t.Fatal(err)
	}
	if err := reopenDirs(staging, x, done); err == nil {
		t.Error("a directory recorded complete is missing, and no error")
	}
}
