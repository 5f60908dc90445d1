package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInput runs commands against a real publisher and device directory
// with wrong input: each must fail with a non-zero exit and say what is
// wrong.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	pub := filepath.Join(dir, "pub")
	if _, stderr, code := runCLI(t, "init", "--dir", pub); code != 0 {
		t.Fatalf("init: %s", stderr)
	}
	root := filepath.Join(pub, "roots", "0001.root")
	dev := filepath.Join(dir, "dev")
	if _, stderr, code := runCLI(t, "device", "init", "--dir", dev, "--root", root, "--kem", "x25519"); code != 0 {
		t.Fatalf("device init: %s", stderr)
	}
	enrollment, _ := os.ReadFile(filepath.Join(dev, "enrollment.txt"))
	if _, stderr, code := runCLI(t, "fleet", "add", "--dir", pub, "--channel", "stable", string(enrollment)); code != 0 {
		t.Fatalf("fleet add: %s", stderr)
	}
	src := filepath.Join(dir, "build")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "app"), []byte("v1"), 0o644)
	car := filepath.Join(dir, "r.car")
	if _, stderr, code := runCLI(t, "publish", "--dir", pub, "--channel", "stable", "--version", "1.2.0", "--rollout", "20", src, "--out", car); code != 0 {
		t.Fatalf("publish: %s", stderr)
	}
	// A key file others can read.
	loose := filepath.Join(dir, "loose")
	if _, stderr, code := runCLI(t, "init", "--dir", loose); code != 0 {
		t.Fatal(stderr)
	}
	os.Chmod(filepath.Join(loose, "keys", "release.key"), 0o644)
	// A key file that cannot be read as a key (truncated by a bad copy).
	broken := filepath.Join(dir, "broken")
	if _, stderr, code := runCLI(t, "init", "--dir", broken); code != 0 {
		t.Fatal(stderr)
	}
	os.WriteFile(filepath.Join(broken, "keys", "root.key"), []byte("meshota-sec1:AAAA\n"), 0o600)
	// A device whose key file is missing.
	nokey := filepath.Join(dir, "nokey")
	if _, stderr, code := runCLI(t, "device", "init", "--dir", nokey, "--root", root); code != 0 {
		t.Fatal(stderr)
	}
	os.Remove(filepath.Join(nokey, "device.key"))

	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing dir flag", []string{"publish", "--channel", "stable", "--version", "1.0.0", src, "--out", car}, 2, "--dir"},
		{"publisher dir that does not exist", []string{"fleet", "list", "--dir", filepath.Join(dir, "nope")}, 1, "not a publisher directory"},
		{"device dir given as publisher dir", []string{"fleet", "list", "--dir", dev}, 1, "not a publisher directory"},
		{"init over an existing publisher", []string{"init", "--dir", pub}, 1, "refusing to overwrite"},
		{"version lower than current", []string{"publish", "--dir", pub, "--channel", "stable", "--version", "1.1.0", src, "--out", car}, 1, "not newer"},
		{"narrower rollout", []string{"rollout", "--dir", pub, "--channel", "stable", "--percent", "10", "--out", car}, 1, "can only widen"},
		{"rollback to an unknown version", []string{"rollback", "--dir", pub, "--channel", "stable", "--to", "0.1.0", "--out", car}, 1, "no release of that version"},
		{"unknown device ID", []string{"fleet", "revoke", "--dir", pub, "--channel", "stable", "dev-aaaaaaaaaaaaaaaaaaaaaaaaaa"}, 1, "not enrolled"},
		{"malformed device ID", []string{"fleet", "revoke", "--dir", pub, "--channel", "stable", "robot-7"}, 1, "device"},
		{"garbage enrollment", []string{"fleet", "add", "--dir", pub, "--channel", "stable", "hello"}, 1, "enrollment"},
		{"unreachable seed", []string{"rollout", "--dir", pub, "--channel", "stable", "--percent", "50", "--seed", "127.0.0.1:1", "--token-file", car}, 1, "cannot reach the seed"},
		{"seed without token", []string{"rollout", "--dir", pub, "--channel", "stable", "--percent", "60", "--seed", "127.0.0.1:1"}, 2, "admin token"},
		{"status of an unreachable seed", []string{"status", "--seed", "127.0.0.1:1"}, 1, "cannot reach the seed"},
		{"key file readable by others", []string{"fleet", "list", "--dir", loose}, 1, "chmod 600"},
		{"unreadable key file", []string{"fleet", "list", "--dir", broken}, 1, "root.key"},
		{"device key file missing", []string{"agent", "--dir", nokey, "--channel", "stable", "--install-dir", filepath.Join(dir, "j")}, 1, "device.key"},
		{"agent on a publisher dir", []string{"agent", "--dir", pub, "--channel", "stable", "--install-dir", filepath.Join(dir, "i")}, 1, "device directory"},
		{"device init over a device", []string{"device", "init", "--dir", dev, "--root", root}, 1, "refusing to overwrite"},
		{"device init with a non-root file", []string{"device", "init", "--dir", filepath.Join(dir, "d2"), "--root", car}, 1, "not a trust root"},
		{"bad rollout percent", []string{"publish", "--dir", pub, "--channel", "stable", "--version", "9.0.0", "--rollout", "0", src, "--out", car}, 2, "rollout"},
		{"bad channel name", []string{"publish", "--dir", pub, "--channel", "Stable!", "--version", "9.0.0", src, "--out", car}, 1, "channel"},
		{"root without subcommand", []string{"root", "--dir", pub}, 2, "rotate"},
		{"root rotate on a device dir", []string{"root", "rotate", "--dir", dev}, 1, "not a publisher directory"},
		{"source that does not exist", []string{"publish", "--dir", pub, "--channel", "stable", "--version", "9.0.0", filepath.Join(dir, "none"), "--out", car}, 1, "none"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, c.args...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d (want %d), stderr:\n%s\nwant it to mention %q", code, c.code, stderr, c.want)
			}
		})
	}
}
