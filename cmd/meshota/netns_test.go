package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshota/meshota/node/netlab"
	"github.com/meshota/meshota/node/status"
)

// TestSitesBehindSlowUplinks runs the real binary in network namespaces:
// a seed on the WAN and two sites of four devices, each site's link to
// the WAN shaped to 2 Mbit/s each way, 100 Mbit/s inside the site. Every device must install, and
// the seed must send each site far less than a copy per device.
func TestSitesBehindSlowUplinks(t *testing.T) {
	if testing.Short() {
		t.Skip("network namespaces and real processes")
	}
	lab := netlab.New(t) // skips, saying why, without root or ip
	bin := buildBinary(t)
	const perSite = 4
	var sites []*netlab.Site
	for range 2 {
		s, err := lab.AddSite(netlab.SiteOptions{Uplink: 2 * netlab.Mbit, Downlink: 2 * netlab.Mbit})
		if err != nil {
			t.Fatal(err)
		}
		sites = append(sites, s)
	}
	seedHost, err := lab.AddHost(nil, netlab.HostOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sh := func(h *netlab.Host, args ...string) string {
		t.Helper()
		var cmd *exec.Cmd
		if h == nil {
			cmd = exec.CommandContext(ctx, bin, args...)
		} else {
			cmd = h.Command(ctx, bin, args...)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	pub := filepath.Join(dir, "pub")
	root := filepath.Join(pub, "roots", "0001.root")
	sh(nil, "init", "--dir", pub)
	type dev struct {
		h   *netlab.Host
		dir string
	}
	var devs []dev
	for si, s := range sites {
		for i := range perSite {
			h, err := lab.AddHost(s, netlab.HostOptions{Up: 100 * netlab.Mbit, Down: 100 * netlab.Mbit})
			if err != nil {
				t.Fatal(err)
			}
			d := filepath.Join(dir, fmt.Sprintf("site%d-dev%d", si, i))
			sh(nil, "device", "init", "--dir", d, "--root", root, "--kem", "x25519")
			en, _ := os.ReadFile(filepath.Join(d, "enrollment.txt"))
			sh(nil, "fleet", "add", "--dir", pub, "--channel", "stable", strings.TrimSpace(string(en)))
			devs = append(devs, dev{h, d})
		}
	}
	src := filepath.Join(dir, "build")
	os.MkdirAll(src, 0o755)
	release := make([]byte, 2<<20)
	rand.Read(release) // distinct chunks: no deduplication to flatter the figures
	os.WriteFile(filepath.Join(src, "firmware.bin"), release, 0o644)
	car := filepath.Join(dir, "r.car")
	sh(nil, "publish", "--dir", pub, "--channel", "stable", "--version", "1.0.0", src, "--out", car)

	seedDir := filepath.Join(dir, "seed")
	seedCmd := seedHost.Command(ctx, bin, "seed", "--dir", seedDir, "--root", root, "--import", car,
		"--listen", "/ip4/"+seedHost.IP()+"/tcp/4001", "--http", seedHost.IP()+":8080", "--admin", "127.0.0.1:7070",
		"--announce-interval", "5s")
	seedLog, _ := os.Create(filepath.Join(dir, "seed.log"))
	seedCmd.Stdout, seedCmd.Stderr = seedLog, seedLog
	if err := seedCmd.Start(); err != nil {
		t.Fatal(err)
	}
	var addrs []byte
	for deadline := time.Now().Add(30 * time.Second); len(addrs) == 0; time.Sleep(100 * time.Millisecond) {
		addrs, _ = os.ReadFile(filepath.Join(seedDir, "addrs"))
		if time.Now().After(deadline) {
			t.Fatal("seed did not start")
		}
	}
	boot := strings.Split(strings.TrimSpace(string(addrs)), "\n")[0]
	start := time.Now()
	for i, d := range devs {
		c := d.h.Command(ctx, bin, "agent", "--dir", d.dir, "--channel", "stable", "--install-dir", filepath.Join(d.dir, "app"),
			"--listen", "/ip4/"+d.h.IP()+"/tcp/4001", "--bootstrap", boot)
		lf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("agent%d.log", i)))
		c.Stdout, c.Stderr = lf, lf
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	var snap status.Snapshot
	for {
		out, err := seedHost.Command(ctx, bin, "status", "--seed", seedHost.IP()+":8080", "--json").Output()
		if err == nil && json.Unmarshal(out, &snap) == nil && len(snap.Channels) == 1 &&
			len(snap.Channels[0].Versions) == 1 && snap.Channels[0].Versions[0].Devices["installed"] == len(devs) {
			break
		}
		if ctx.Err() != nil {
			logs, _ := exec.Command("sh", "-c", "tail -n 5 "+dir+"/*.log").CombinedOutput()
			t.Fatalf("not every device installed: %+v\n%s", snap, logs)
		}
		time.Sleep(time.Second)
	}
	took := time.Since(start)
	for _, d := range devs {
		got, err := os.ReadFile(filepath.Join(d.dir, "app", "current", "firmware.bin"))
		if err != nil || len(got) != len(release) {
			t.Fatalf("device %s: %d bytes installed, %v", d.dir, len(got), err)
		}
	}
	ch := snap.Channels[0]
	copies := float64(snap.SeedBytesServed) / float64(len(release)) / float64(len(sites))
	t.Logf("%d devices in %d sites installed %d bytes in %v; the seed served %d bytes = %.2f copies per site; devices got %d from the seed, %d from LAN peers, %d from other peers",
		len(devs), len(sites), len(release), took.Round(time.Millisecond), snap.SeedBytesServed, copies, ch.BytesSeed, ch.BytesLAN, ch.BytesPeer)
	if copies >= 2 {
		t.Fatalf("the seed sent %.2f copies per site through the slow uplinks; want under 2", copies)
	}
}
