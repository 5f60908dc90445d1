package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meshota/meshota/node/status"
)

func init() {
	c := &command{
		Name:    "status",
		Summary: "show rollout progress from a seed",
		Usage: `Usage: meshota status --seed HTTP_ADDR [--json]

Reads the seed's /api/status and prints, per channel and release, how many
devices are downloading, installed, failed or rolled back, the bytes
devices received from the seed versus from peers, and the failures with
their errors.

Examples:
  meshota status --seed 127.0.0.1:8080
  meshota status --seed 127.0.0.1:8080 --json | jq '.channels[0]'`,
	}
	c.Run = func(ctx context.Context, e *env, args []string) error {
		fs := newFlagSet(c, e)
		addr := fs.String("seed", "", "the seed's HTTP address (host:port, required)")
		asJSON := fs.Bool("json", false, "print the raw JSON")
		if err := parseArgs(fs, args); err != nil {
			return err
		}
		if *addr == "" || fs.NArg() != 0 {
			return fmt.Errorf("%w: --seed is required", errUsage)
		}
		snap, raw, err := fetchStatus(ctx, *addr)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := e.Stdout.Write(raw)
			return err
		}
		printStatus(e.Stdout, snap)
		return nil
	}
	register(c)
}

func fetchStatus(ctx context.Context, addr string) (*status.Snapshot, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/status", nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach the seed at %s: %w (is meshota seed running with --http %s?)", addr, err, addr)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("seed answered %s: %s", resp.Status, strings.TrimSpace(string(raw)))
	}
	var s status.Snapshot
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, nil, fmt.Errorf("seed answer is not a status document: %w", err)
	}
	return &s, raw, nil
}

func printStatus(w io.Writer, s *status.Snapshot) {
	if len(s.Channels) == 0 {
		fmt.Fprintln(w, "no device has reported yet")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tSEQ\tVERSION\tINSTALLED\tDOWNLOADING\tFAILED\tROLLED BACK")
	for _, ch := range s.Channels {
		for _, v := range ch.Versions {
			d := v.Devices
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%d\n", ch.Channel, v.Sequence, v.Version,
				d[status.StateInstalled], d[status.StateDownloading], d[status.StateFailed], d[status.StateRolledBack])
		}
	}
	tw.Flush()
	for _, ch := range s.Channels {
		total := ch.BytesSeed + ch.BytesLAN + ch.BytesPeer
		share := 0.0
		if total > 0 {
			share = 100 * float64(ch.BytesSeed) / float64(total)
		}
		fmt.Fprintf(w, "\n%s: devices received %s from the seed, %s from LAN peers, %s from other peers (seed share %.1f%%)\n",
			ch.Channel, humanBytes(ch.BytesSeed), humanBytes(ch.BytesLAN), humanBytes(ch.BytesPeer), share)
		fails := ch.Failures
		sort.Slice(fails, func(i, j int) bool { return fails[i].DeviceID < fails[j].DeviceID })
		for _, f := range fails {
			fmt.Fprintf(w, "  %s %s at %s: %s\n", f.DeviceID, f.State, f.Version, f.Error)
		}
		for _, e := range ch.Equivocations {
			fmt.Fprintf(w, "  ALARM: %d device(s) were shown two different manifests with sequence %d (sha256 %.16s… and %.16s…): the release keys may be compromised\n",
				len(e.Devices), e.Sequence, e.Digests[0], e.Digests[1])
		}
		if len(ch.Frozen) > 0 {
			fmt.Fprintf(w, "  %d device(s) frozen: their newest manifest expired with nothing newer (cut off, or the release was not re-signed): %s\n",
				len(ch.Frozen), strings.Join(ch.Frozen, ", "))
		}
	}
	fmt.Fprintf(w, "\n%d devices reported; the seed served %s\n", s.Devices, humanBytes(s.SeedBytesServed))
}
