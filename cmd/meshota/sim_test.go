package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSimCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "res")
	stdout, stderr, code := runCLI(t, "sim", "office", "--runs", "2", "--out", out)
	if code != 0 {
		t.Fatalf("sim office: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"small office", "100% installed", "mesh", "central", "lower bound", "simulated/analytic", "±"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	for _, f := range []string{"summary.json", "timeseries.csv", "devices.csv", "completion_cdf.svg", "completion_cdf.png", "seed_egress.svg", "seed_egress.png"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	// The default scenario runs without arguments.
	if stdout, stderr, code := runCLI(t, "sim"); code != 0 || !strings.Contains(stdout, "1,000 devices") {
		t.Fatalf("sim: exit %d: %s%s", code, stdout, stderr)
	}
	if stdout, _, code := runCLI(t, "sim", "--list"); code != 0 || !strings.Contains(stdout, "national") {
		t.Fatalf("sim --list: %s", stdout)
	}
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"sim", "--set", "sites.uplnk=1Mbit"}, "sites.uplnk"},
		{[]string{"sim", "--set", "fleet.devices=-3"}, "fleet.devices"},
		{[]string{"sim", "no-such-scenario"}, "neither a file nor a shipped example"},
		{[]string{"sim", "--runs", "0"}, "--runs"},
	}
	for _, b := range bad {
		_, stderr, code := runCLI(t, b.args...)
		if code == 0 || !strings.Contains(stderr, b.want) {
			t.Errorf("%v: exit %d, stderr %q, want it to mention %q", b.args, code, stderr, b.want)
		}
	}
}
