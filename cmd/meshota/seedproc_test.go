package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// seedProc is a real seed process listening on loopback.
type seedProc struct {
	cmd         *exec.Cmd
	admin, http string   // admin API and status addresses
	addrs       []string // libp2p addresses, with /p2p/
	tokenFile   string
}

// startSeedProc starts bin's seed with its state in dir, its output in
// dir/seed.log, and waits until it listens.
func startSeedProc(t *testing.T, bin, dir, root string) *seedProc {
	t.Helper()
	s := &seedProc{admin: "127.0.0.1:" + freePort(t), http: "127.0.0.1:" + freePort(t), tokenFile: filepath.Join(dir, "admin.token")}
	s.cmd = exec.Command(bin, "seed", "--dir", dir, "--root", root, "--listen", "/ip4/127.0.0.1/tcp/0",
		"--http", s.http, "--admin", s.admin, "--announce-interval", "2s")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(dir, "seed.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cmd.Process.Kill(); s.cmd.Wait() })
	for deadline := time.Now().Add(30 * time.Second); len(s.addrs) == 0; time.Sleep(50 * time.Millisecond) {
		if addrs, _ := os.ReadFile(filepath.Join(dir, "addrs")); len(addrs) > 0 {
			s.addrs = strings.Fields(string(addrs))
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "seed.log"))
			t.Fatalf("seed did not start:\n%s", log)
		}
	}
	return s
}
