package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDaemonsStopOnSIGTERM starts a real seed and agent and checks that
// SIGTERM makes both exit 0, promptly, with their state files readable.
func TestDaemonsStopOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs processes")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	pub, seedDir, dev := filepath.Join(dir, "pub"), filepath.Join(dir, "seed"), filepath.Join(dir, "dev")
	root := filepath.Join(pub, "roots", "0001.root")
	run("init", "--dir", pub)
	run("device", "init", "--dir", dev, "--root", root, "--kem", "x25519")
	start := func(args ...string) (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(bin, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		return cmd, &out
	}
	seed, seedOut := start("seed", "--dir", seedDir, "--root", root, "--listen", "/ip4/127.0.0.1/tcp/0",
		"--http", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(seedDir, "addrs")); err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("seed did not start:\n%s", seedOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
	addrs, _ := os.ReadFile(filepath.Join(seedDir, "addrs"))
	agent, agentOut := start("agent", "--dir", dev, "--channel", "stable", "--install-dir", filepath.Join(dir, "app"),
		"--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--bootstrap", strings.Split(string(addrs), "\n")[0])
	time.Sleep(2 * time.Second) // let it connect and run
	for name, c := range map[string]*exec.Cmd{"agent": agent, "seed": seed} {
		out := agentOut
		if name == "seed" {
			out = seedOut
		}
		if err := c.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s exited with %v after SIGTERM:\n%s", name, err, out)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s did not stop within 20 s of SIGTERM:\n%s", name, out)
		}
	}
	for _, f := range []string{filepath.Join(dev, "agent.state"), filepath.Join(seedDir, "seed.state")} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("state file after shutdown: %v", err)
		}
	}
}
