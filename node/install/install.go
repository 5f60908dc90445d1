package install

import (
	"context"
	"errors"
	"fmt"
	"github.com/meshota/meshota/content/atomicfile"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Release names one release for the hooks' environment.
type Release struct {
	Channel  string
	Sequence uint64
	Version  string
}

// Name is the directory name of the release under releases/.
func (r Release) Name() string {
	return fmt.Sprintf("%020d-%s", r.Sequence, r.Version)
}

// Dir is an install directory.
type Dir struct {
	root    string
	channel string
	install Hook
	health  Hook
	log     *slog.Logger
}

// Options configure a Dir.
type Options struct {
	// Channel is passed to the hooks as MESHOTA_CHANNEL when a release does
	// not name one (a rollback to a release known only by its directory).
	Channel string
	// Install runs after a release is in place but before it is made
	// current (MESHOTA_RELEASE_DIR names it), and again with
	// MESHOTA_ROLLBACK=1 for the release put back after a failed health check.
	Install Hook
	// Health runs after the release was made current; failure (non-zero
	// exit or timeout) rolls back.
	Health Hook
	Logger *slog.Logger
}

// Open prepares root (creating it) and cleans up what a crash may have left:
// half-made symlinks and releases no symlink points at are kept only if they
// are complete, which the caller decides — here only temporary names go.
func Open(root string, o Options) (*Dir, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dir{root: root, channel: o.Channel, install: o.Install, health: o.Health, log: o.Logger}
	if err := os.MkdirAll(filepath.Join(root, "releases"), 0o755); err != nil {
		return nil, fmt.Errorf("install: create %s: %w", root, err)
	}
	if err := os.MkdirAll(d.StagingRoot(), 0o755); err != nil {
		return nil, fmt.Errorf("install: create staging: %w", err)
	}
	for _, tmp := range []string{"current.tmp", "previous.tmp"} {
		if err := os.Remove(filepath.Join(root, tmp)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("install: clean up %s: %w", tmp, err)
		}
	}
	return d, nil
}

// StagingRoot is where assemblies of new releases are written. It is on the
// same filesystem as releases/, so moving a finished tree in is a rename.
func (d *Dir) StagingRoot() string { return filepath.Join(d.root, "staging") }

// StagingDir is the staging directory for r.
func (d *Dir) StagingDir(r Release) string { return filepath.Join(d.StagingRoot(), r.Name()) }

// ReleaseDir is where r lives once placed.
func (d *Dir) ReleaseDir(r Release) string { return filepath.Join(d.root, "releases", r.Name()) }

// CurrentPath is the stable path of the running release (a symlink).
func (d *Dir) CurrentPath() string { return filepath.Join(d.root, "current") }

// Current returns the running release's name, or "" if none.
func (d *Dir) Current() (string, error) { return d.link("current") }

// Previous returns the rollback target's name, or "" if none.
func (d *Dir) Previous() (string, error) { return d.link("previous") }

func (d *Dir) link(name string) (string, error) {
	t, err := os.Readlink(filepath.Join(d.root, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("install: read %s: %w", name, err)
	}
	return filepath.Base(t), nil
}

// Place moves a complete staged tree for r into releases/. Placing an
// already placed release is a no-op, so a restart can repeat it.
func (d *Dir) Place(r Release) error {
	if err := checkName(r.Name()); err != nil {
		return err
	}
	dst := d.ReleaseDir(r)
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if err := os.Rename(d.StagingDir(r), dst); err != nil {
		return fmt.Errorf("install: place %s: %w", r.Name(), err)
	}
	return atomicfile.SyncDir(filepath.Join(d.root, "releases"))
}

// Activate makes the placed release r current: install hook, swap, health
// check. On an install-hook failure nothing changes (ErrInstallHook). On a
// health-check failure the previous release is made current again and its
// install hook re-run with MESHOTA_ROLLBACK=1 (ErrHealthCheck). On success
// the old current release becomes previous and older releases are removed.
func (d *Dir) Activate(ctx context.Context, r Release) error {
	if err := checkName(r.Name()); err != nil {
		return err
	}
	if _, err := os.Stat(d.ReleaseDir(r)); err != nil {
		return fmt.Errorf("install: release %s is not placed: %w", r.Name(), err)
	}
	old, err := d.Current()
	if err != nil {
		return err
	}
	if old == r.Name() {
		return nil // already running: a restart after a completed activation
	}
	if err := d.install.run(ctx, d.env(r, false)); err != nil {
		return fmt.Errorf("%w for %s: %v", ErrInstallHook, r.Name(), err)
	}
	if old != "" {
		if err := d.setLink("previous", old); err != nil {
			return err
		}
	}
	if err := d.setLink("current", r.Name()); err != nil {
		return err
	}
	if err := d.health.run(ctx, d.env(r, false)); err != nil {
		herr := fmt.Errorf("%w for %s: %v", ErrHealthCheck, r.Name(), err)
		if old == "" {
			// Nothing to return to: leave no release running rather than a
			// failed one.
			if rerr := os.Remove(d.CurrentPath()); rerr != nil {
				return errors.Join(herr, rerr)
			}
			return herr
		}
		if rerr := d.revertTo(ctx, old, r.Channel); rerr != nil {
			return errors.Join(herr, rerr)
		}
		return herr
	}
	d.log.Info("release activated", "release", r.Name(), "previous", old)
	return d.prune()
}

// Rollback makes the previous release current again, as after a failed
// health check.
func (d *Dir) Rollback(ctx context.Context) error {
	prev, err := d.Previous()
	if err != nil {
		return err
	}
	if prev == "" {
		return ErrNoPrevious
	}
	return d.revertTo(ctx, prev, d.channel)
}

func (d *Dir) revertTo(ctx context.Context, name, channel string) error {
	if err := d.setLink("current", name); err != nil {
		return err
	}
	r := parseName(name)
	r.Channel = channel
	if err := d.install.run(ctx, d.env(r, true)); err != nil {
		return fmt.Errorf("install: re-install %s after rollback: %w", name, err)
	}
	d.log.Warn("rolled back", "release", name)
	return nil
}

func (d *Dir) env(r Release, rollback bool) []string {
	if r.Channel == "" {
		r.Channel = d.channel
	}
	env := []string{
		"MESHOTA_RELEASE_DIR=" + d.ReleaseDir(r),
		"MESHOTA_CURRENT_DIR=" + d.CurrentPath(),
		"MESHOTA_CHANNEL=" + r.Channel,
		"MESHOTA_VERSION=" + r.Version,
		"MESHOTA_SEQUENCE=" + strconv.FormatUint(r.Sequence, 10),
	}
	if rollback {
		env = append(env, "MESHOTA_ROLLBACK=1")
	}
	return env
}

// setLink points name at releases/target through a rename, then fsyncs.
func (d *Dir) setLink(name, target string) error {
	tmp := filepath.Join(d.root, name+".tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Join("releases", target), tmp); err != nil {
		return fmt.Errorf("install: link %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(d.root, name)); err != nil {
		return fmt.Errorf("install: switch %s: %w", name, err)
	}
	return atomicfile.SyncDir(d.root)
}

// prune removes releases that are neither current nor previous.
func (d *Dir) prune() error {
	cur, err := d.Current()
	if err != nil {
		return err
	}
	prev, err := d.Previous()
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(d.root, "releases"))
	if err != nil {
		return fmt.Errorf("install: list releases: %w", err)
	}
	for _, e := range entries {
		if e.Name() == cur || e.Name() == prev {
			continue
		}
		if err := os.RemoveAll(filepath.Join(d.root, "releases", e.Name())); err != nil {
			return fmt.Errorf("install: remove old release %s: %w", e.Name(), err)
		}
	}
	return nil
}

func checkName(n string) error {
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, `/\`) || strings.ContainsRune(n, 0) {
		return fmt.Errorf("%w: %q", ErrBadName, n)
	}
	return nil
}

// ParseName recovers sequence and version from a release directory name
// (as Current and Previous return it).
func ParseName(n string) Release { return parseName(n) }

// parseName recovers sequence and version from a release directory name.
func parseName(n string) Release {
	seq, ver, _ := strings.Cut(n, "-")
	s, _ := strconv.ParseUint(seq, 10, 64)
	return Release{Sequence: s, Version: ver}
}
