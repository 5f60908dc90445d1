package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/meshota/meshota/node/status"
)

func TestPrintStatusShowsAlarms(t *testing.T) {
	snap := &status.Snapshot{Devices: 2, Channels: []status.ChannelSummary{{
		Channel:  "stable",
		Versions: []status.VersionSummary{{Sequence: 4, Version: "1.0.0", Devices: map[string]int{status.StateInstalled: 2}}},
		Frozen:   []string{"dev-a"},
		Equivocations: []status.Equivocation{{Channel: "stable", Sequence: 4,
			Digests: [2]string{strings.Repeat("a", 64), strings.Repeat("b", 64)}, Devices: []string{"dev-b"}}},
	}}}
	var b bytes.Buffer
	printStatus(&b, snap)
	for _, want := range []string{
		"ALARM: 1 device(s) were shown two different manifests with sequence 4 (sha256 aaaaaaaaaaaaaaaa… and bbbbbbbbbbbbbbbb…)",
		"1 device(s) frozen: their newest manifest expired with nothing newer (cut off, or the release was not re-signed): dev-a",
	} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("status output lacks %q:\n%s", want, b.String())
		}
	}
}
