package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshota/meshota/node/agent"
	"github.com/meshota/meshota/node/status"
	"github.com/meshota/meshota/protocol"
)

// loadChild marks the non-race run of TestSeedServes200Agents.
const loadChild = "MESHOTA_LOAD_TEST_CHILD"

// TestSeedServes200Agents has one real seed process serve a release to
// 200 agents that learn of it at once. The agents run in this process
// (the agent command's own start-up, startAgent: host, gossip, store,
// exchange and agent on loopback); each bootstraps to the seed and is
// linked to the previous one. Every agent must install the release with
// no error, and the seed's peak resident memory must stay bounded.
//
// The race detector allows 8128 goroutines and 200 libp2p hosts need
// tens of thousands, so under -race the test runs itself again in a
// build without it.
func TestSeedServes200Agents(t *testing.T) {
	if testing.Short() {
		t.Skip("200 agents")
	}
	if raceEnabled && os.Getenv(loadChild) == "" {
		out, err := runNonRace(t, "^TestSeedServes200Agents$")
		t.Logf("non-race run:\n%s", out)
		if err != nil {
			t.Fatalf("non-race run: %v", err)
		}
		return
	}
	const (
		agents = 200
		size   = 1 << 20
		// The seed's peak resident memory: it holds its store on disk and
		// sends at most a few MiB to each peer at a time.
		maxSeedRSS = 400 << 20
	)
	bin := buildBinary(t)
	dir := t.TempDir()
	pub, root := filepath.Join(dir, "pub"), filepath.Join(dir, "pub", "roots", "0001.root")
	mustCLI(t, "init", "--dir", pub)
	seed := startSeedProc(t, bin, filepath.Join(dir, "seed"), root)

	devs := make([]string, agents)
	enroll := []string{"fleet", "add", "--dir", pub, "--channel", "stable"}
	for i := range devs {
		devs[i] = filepath.Join(dir, fmt.Sprintf("dev%03d", i))
		mustCLI(t, "device", "init", "--dir", devs[i], "--root", root, "--kem", "x25519")
		en, err := os.ReadFile(filepath.Join(devs[i], "enrollment.txt"))
		if err != nil {
			t.Fatal(err)
		}
		enroll = append(enroll, strings.TrimSpace(string(en)))
	}
	mustCLI(t, enroll...)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	running := make([]*agent.Agent, agents)
	runtimes := make([]*runtime, agents)
	var wg sync.WaitGroup
	defer func() {
		// Closing 200 hosts in one process once hung for minutes inside
		// go-libp2p (AutoNAT closing its event-bus subscription while
		// identify held the bus emitting to it): bound the wait so the
		// figures above are not lost to a shutdown that is not under test.
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Log("some agents had not closed a minute after shutdown (go-libp2p event-bus close); leaving them to the process exit")
		}
	}()
	defer cancel()
	seedID, err := peer.AddrInfoFromString(seed.addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	for i, d := range devs {
		a, rt, err := startAgent(ctx, agentOptions{Dir: d, Channel: "stable", InstallDir: filepath.Join(d, "app"),
			Bootstrap: seed.addrs[:1], Listen: []string{"/ip4/127.0.0.1/tcp/0"}}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		running[i], runtimes[i] = a, rt
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer rt.Close()
			a.Run(ctx)
		}()
		// Devices come up one after another, not all in the same
		// instant: a storm of 200 simultaneous handshakes overflows the
		// seed's transient connection limits and the refused devices
		// back off for up to a minute.
		for rt.host.Network().Connectedness(seedID.ID) != network.Connected {
			if ctx.Err() != nil || time.Since(begin) > 2*time.Minute {
				t.Fatalf("agent %d did not connect to the seed", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if i > 0 {
			prev := runtimes[i-1].host
			if err := rt.host.Connect(ctx, peer.AddrInfo{ID: prev.ID(), Addrs: prev.Addrs()}); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Logf("%d agents started and connected to the seed in %v", agents, time.Since(begin).Round(time.Millisecond))
	src := filepath.Join(dir, "build")
	os.MkdirAll(src, 0o755)
	firmware := make([]byte, size)
	rand.Read(firmware)
	os.WriteFile(filepath.Join(src, "firmware.bin"), firmware, 0o644)
	start := time.Now()
	mustCLI(t, "publish", "--dir", pub, "--channel", "stable", "--version", "1.0.0", src, "--seed", seed.admin, "--token-file", seed.tokenFile)
	took := make([]time.Duration, agents) // from the publish to each install
	errs := make(chan error, agents)
	for i, a := range running {
		go func() {
			timeout := time.After(3 * time.Minute)
			for {
				select {
				case e := <-a.Events():
					switch {
					case e.Sequence == 1 && e.State == protocol.StateInstalled:
						took[i] = time.Since(start)
						errs <- nil
						return
					case e.State == protocol.StateFailed || e.State == protocol.StateRolledBack:
						errs <- fmt.Errorf("agent %d: %s: %v", i, e.State, e.Err)
						return
					}
				case <-timeout:
					errs <- fmt.Errorf("agent %d did not install the release in time", i)
					return
				}
			}
		}()
	}
	for range running {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	wall := time.Since(start)
	for i, d := range devs {
		if got, _ := os.ReadFile(filepath.Join(d, "app", "current", "firmware.bin")); !bytes.Equal(got, firmware) {
			t.Fatalf("agent %d installed something else", i)
		}
	}
	var fromSeed, received uint64
	for _, rt := range runtimes {
		tr := rt.ex.Traffic()
		fromSeed += tr.FromSeed
		received += tr.FromSeed + tr.FromLAN + tr.FromPeers
	}
	served := seedServed(t, seed.http)
	rss := procMemory(t, seed.cmd.Process.Pid)
	slices.Sort(took)
	t.Logf("installs after the publish: first %v, median %v, 90th percentile %v, last %v",
		took[0].Round(time.Millisecond), took[agents/2].Round(time.Millisecond), took[agents*9/10].Round(time.Millisecond), took[agents-1].Round(time.Millisecond))
	t.Logf("%d agents, %d KiB release: all installed in %v; seed egress %.1f MiB (%.2f copies of the release's blocks), seed share %.1f%% of %.1f MiB received; seed peak RSS %.1f MiB, now %.1f MiB",
		agents, size>>10, wall.Round(time.Millisecond), float64(served)/(1<<20), float64(fromSeed)/float64(received)*agents,
		100*float64(fromSeed)/float64(received), float64(received)/(1<<20), float64(rss.peak)/(1<<20), float64(rss.now)/(1<<20))
	if served != fromSeed {
		t.Errorf("the seed counted %d bytes served, agents %d from it", served, fromSeed)
	}
	if rss.peak > maxSeedRSS {
		t.Errorf("seed peak RSS %d MiB, bound %d MiB", rss.peak>>20, maxSeedRSS>>20)
	}
}

func mustCLI(t *testing.T, args ...string) {
	t.Helper()
	if stdout, stderr, code := runCLI(t, args...); code != 0 {
		t.Fatalf("%s: exit %d\n%s%s", args[0], code, stdout, stderr)
	}
}

// runNonRace runs the tests matching pattern of this package in a build
// without the race detector.
func runNonRace(t *testing.T, pattern string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command("go", "test", "-count=1", "-v", "-run", pattern, "-timeout", "10m", ".")
	cmd.Env = append(os.Environ(), loadChild+"=1")
	return cmd.CombinedOutput()
}

// seedServed reads the bytes the seed served from its status API.
func seedServed(t *testing.T, addr string) uint64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s status.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s.SeedBytesServed
}

type memory struct{ peak, now uint64 }

// procMemory reads a process's peak and current resident memory.
func procMemory(t *testing.T, pid int) memory {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var m memory
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseUint(f[1], 10, 64)
		switch f[0] {
		case "VmHWM:":
			m.peak = kb << 10
		case "VmRSS:":
			m.now = kb << 10
		}
	}
	if m.peak == 0 {
		t.Fatalf("no VmHWM in /proc/%d/status", pid)
	}
	return m
}
