package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestReadmeWalkthrough runs the README's walkthrough block as a shell
// script against the built binary: real processes on loopback, with the
// README's ports swapped for free ones. A line ending in "# => TEXT" must
// come to print TEXT (it is retried while the device catches up).
func TestReadmeWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs processes")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block, err := walkthroughBlock(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	bin := filepath.Dir(buildBinary(t))
	for _, port := range []string{"4001", "8080", "7070"} {
		block = strings.ReplaceAll(block, ":"+port, ":"+freePort(t))
		block = strings.ReplaceAll(block, "/tcp/"+port, "/tcp/"+freePort(t))
	}
	script := walkthroughScript(block)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever the script left running
	if err != nil {
		t.Fatalf("walkthrough failed: %v\nscript:\n%s\noutput:\n%s", err, script, out.String())
	}
	for _, want := range []string{"enrolled dev-", "published stable 1.0.0", "rollback of stable to 1.0.0"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("walkthrough output lacks %q:\n%s", want, out.String())
		}
	}
}

// walkthroughBlock returns the first ```sh block after the walkthrough
// heading, continuation lines joined.
func walkthroughBlock(readme string) (string, error) {
	_, rest, ok := strings.Cut(readme, "## Five-minute walkthrough")
	if !ok {
		return "", fmt.Errorf("README has no walkthrough section")
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	if !ok {
		return "", fmt.Errorf("walkthrough has no sh block")
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		return "", fmt.Errorf("walkthrough block is not closed")
	}
	return strings.ReplaceAll(block, "\\\n", " "), nil
}

// walkthroughScript turns the block into a bash script: the build line is
// dropped (the test built the binary), "# => TEXT" lines become waits.
func walkthroughScript(block string) string {
	var b strings.Builder
	b.WriteString(`set -euo pipefail
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
wait_for() { # wait_for WANT COMMAND
  for _ in $(seq 300); do
    if out=$(eval "$2" 2>/dev/null) && [ "$out" = "$1" ]; then echo "$out"; return 0; fi
    sleep 0.2
  done
  echo "timed out waiting for '$1' from: $2 (last: ${out:-})" >&2; return 1
}
`)
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "make build") {
			continue
		}
		if cmd, want, ok := strings.Cut(line, "# =>"); ok {
			fmt.Fprintf(&b, "wait_for %q %q\n", strings.TrimSpace(want), strings.TrimSpace(cmd))
			continue
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

var built struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// buildBinary builds meshota once per test run and returns its path.
func buildBinary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "meshota-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "meshota")
		built.out, built.err = exec.Command("go", "build", "-o", built.path, ".").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("build: %v\n%s", built.err, built.out)
	}
	return built.path
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func TestMain(m *testing.M) {
	if benchHelper() {
		return
	}
	code := m.Run()
	if built.path != "" {
		os.RemoveAll(filepath.Dir(built.path))
	}
	os.Exit(code)
}
