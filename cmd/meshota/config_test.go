package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestApplyConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.toml")
	os.WriteFile(path, []byte("channel = \"stable\"\nhealth-timeout = \"2m\"\nbootstrap = [\"/a\", \"/b\"]\nno-mdns = true\n"), 0o644)
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	channel := fs.String("channel", "", "")
	timeout := fs.Duration("health-timeout", time.Minute, "")
	noMDNS := fs.Bool("no-mdns", false, "")
	var boot multiFlag
	fs.Var(&boot, "bootstrap", "")
	if err := parseArgs(fs, []string{"--channel", "beta"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfig(fs, path); err != nil {
		t.Fatal(err)
	}
	if *channel != "beta" || *timeout != 2*time.Minute || !*noMDNS || strings.Join(boot, ",") != "/a,/b" {
		t.Fatalf("channel %q timeout %v no-mdns %v bootstrap %v: the command line must win, the file fill the rest", *channel, *timeout, *noMDNS, boot)
	}
	os.WriteFile(path, []byte("chanel = \"typo\"\n"), 0o644)
	if err := applyConfig(flag.NewFlagSet("t", flag.ContinueOnError), path); err == nil || !strings.Contains(err.Error(), `unknown key "chanel"`) {
		t.Fatalf("unknown key: %v", err)
	}
}
