package install

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stage writes a one-file release into d's staging area.
func stage(t *testing.T, d *Dir, r Release, content string) {
	t.Helper()
	dir := d.StagingDir(r)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Place(r); err != nil {
		t.Fatal(err)
	}
}

func running(t *testing.T, d *Dir) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.CurrentPath(), "app"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func rel(seq uint64, v string) Release { return Release{Channel: "stable", Sequence: seq, Version: v} }

func TestActivateSwapsAndKeepsPrevious(t *testing.T) {
	root := t.TempDir()
	log := filepath.Join(root, "hook.log")
	d, err := Open(filepath.Join(root, "inst"), Options{
		Install: Hook{Command: `echo "$MESHOTA_CHANNEL $MESHOTA_SEQUENCE $MESHOTA_VERSION ${MESHOTA_ROLLBACK:-0} $(cat "$MESHOTA_RELEASE_DIR/app")" >> ` + log},
		Health:  Hook{Command: `test "$(cat "$MESHOTA_CURRENT_DIR/app")" != broken`, Timeout: 5 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	steps := []struct {
		rel       Release
		content   string
		wantErr   error
		running   string
		previous  string
		wantKept  int
		wantHooks string
	}{
		{rel(1, "1.0.0"), "v1", nil, "v1", "", 1, "stable 1 1.0.0 0 v1\n"},
		{rel(2, "1.1.0"), "v2", nil, "v2", rel(1, "1.0.0").Name(), 2, "stable 2 1.1.0 0 v2\n"},
		{rel(3, "1.2.0"), "broken", ErrHealthCheck, "v2", rel(2, "1.1.0").Name(), 3, "stable 3 1.2.0 0 broken\nstable 2 1.1.0 1 v2\n"},
		{rel(4, "1.3.0"), "v4", nil, "v4", rel(2, "1.1.0").Name(), 2, "stable 4 1.3.0 0 v4\n"},
	}
	var hooks string
	for _, s := range steps {
		stage(t, d, s.rel, s.content)
		err := d.Activate(ctx, s.rel)
		if !errors.Is(err, s.wantErr) {
			t.Fatalf("%s: err = %v, want %v", s.rel.Name(), err, s.wantErr)
		}
		if got := running(t, d); got != s.running {
			t.Fatalf("%s: running %q, want %q", s.rel.Name(), got, s.running)
		}
		if prev, _ := d.Previous(); prev != s.previous {
			t.Fatalf("%s: previous %q, want %q", s.rel.Name(), prev, s.previous)
		}
		entries, _ := os.ReadDir(filepath.Join(d.root, "releases"))
		if len(entries) != s.wantKept {
			t.Fatalf("%s: %d releases kept, want %d", s.rel.Name(), len(entries), s.wantKept)
		}
		hooks += s.wantHooks
		b, _ := os.ReadFile(log)
		if string(b) != hooks {
			t.Fatalf("%s: hook log\n%s\nwant\n%s", s.rel.Name(), b, hooks)
		}
	}
	// Activating what already runs (a restart after success) does nothing.
	if err := d.Activate(ctx, rel(4, "1.3.0")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(log); string(b) != hooks {
		t.Fatal("re-activating the running release ran the hook again")
	}
	// A publisher-ordered rollback returns to previous.
	if err := d.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := running(t, d); got != "v2" {
		t.Fatalf("after rollback running %q, want v2", got)
	}
}

// A failing hook of the second release leaves the first one running.
func TestFailingHookOfNextReleaseKeepsThePrevious(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want error
		text string // in the error: the hook's output, or why it failed
	}{
		{"install hook fails", Options{Install: Hook{Command: `test "$MESHOTA_VERSION" != 2.0.0 || { echo disk on fire >&2; exit 3; }`}}, ErrInstallHook, "disk on fire"},
		{"health check times out", Options{Health: Hook{Command: `test "$MESHOTA_VERSION" = 1.0.0 || sleep 60`, Timeout: 300 * time.Millisecond}}, ErrHealthCheck, "deadline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Open(t.TempDir(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			stage(t, d, rel(1, "1.0.0"), "v1")
			if err := d.Activate(context.Background(), rel(1, "1.0.0")); err != nil {
				t.Fatal(err)
			}
			stage(t, d, rel(2, "2.0.0"), "v2")
			err = d.Activate(context.Background(), rel(2, "2.0.0"))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tc.want, tc.text)
			}
			if got := running(t, d); got != "v1" {
				t.Fatalf("running %q after the failed hook, want v1", got)
			}
		})
	}
}

func TestFirstReleaseFailingHealthLeavesNothingRunning(t *testing.T) {
	d, err := Open(t.TempDir(), Options{Health: Hook{Command: "false"}})
	if err != nil {
		t.Fatal(err)
	}
	stage(t, d, rel(1, "1.0.0"), "v1")
	if err := d.Activate(context.Background(), rel(1, "1.0.0")); !errors.Is(err, ErrHealthCheck) {
		t.Fatalf("err = %v", err)
	}
	if cur, _ := d.Current(); cur != "" {
		t.Fatalf("current = %q after the only release failed", cur)
	}
	if err := d.Rollback(context.Background()); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("rollback err = %v, want ErrNoPrevious", err)
	}
}

func TestCrashLeftoversAreCleanedAndCurrentIsWhole(t *testing.T) {
	root := t.TempDir()
	d, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	stage(t, d, rel(1, "1.0.0"), "v1")
	if err := d.Activate(context.Background(), rel(1, "1.0.0")); err != nil {
		t.Fatal(err)
	}
	// A crash in setLink after the temporary symlink was made but before
	// the rename: current still names the old release.
	if err := os.Symlink("releases/whatever", filepath.Join(root, "current.tmp")); err != nil {
		t.Fatal(err)
	}
	d2, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(root, "current.tmp")); !os.IsNotExist(err) {
		t.Fatal("leftover current.tmp not removed")
	}
	if got := running(t, d2); got != "v1" {
		t.Fatalf("running %q, want v1", got)
	}
	// Placing twice (a restart after Place) is harmless.
	if err := d2.Place(rel(1, "1.0.0")); err != nil {
		t.Fatal(err)
	}
}

func TestBadNamesRefused(t *testing.T) {
	d, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"../../etc", "a/b", "x\x00y"} {
		r := rel(1, v)
		if err := d.Place(r); !errors.Is(err, ErrBadName) {
			t.Errorf("Place(%q) err = %v, want ErrBadName", v, err)
		}
		if err := d.Activate(context.Background(), r); !errors.Is(err, ErrBadName) {
			t.Errorf("Activate(%q) err = %v, want ErrBadName", v, err)
		}
	}
}
