package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/datastore/dshelp"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/content/store"
	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/node/publisher"
	"github.com/meshota/meshota/protocol"
)

// TestAgentSurvivesSIGKILL kills a real agent at seeded random instants
// while it downloads, assembles, runs its install hook and switches
// releases. The device keeps plaintext only: what it had at a kill is the
// blocks in its store (index pages, block list, keyring, blocks spilled
// by a stopped run) and the chunks whose plaintext is in its staging or
// placed tree and hashes right (sealed again, it gives the chunk's CID).
// After every kill the running release is exactly the old or the new one,
// the store's blocks other than chunk blocks are still there (that part
// never shrinks), and a last run converges to the new release, with no
// chunk block left in the store, without fetching again any block it had
// before the kill: the restarted agent's debug log names every block it
// received from the network, and none of them may be one it had.
func TestAgentSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes")
	}
	const trials = 50
	bin := buildBinary(t)
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	pub, seedDir, dev := filepath.Join(dir, "pub"), filepath.Join(dir, "seed"), filepath.Join(dir, "dev")
	root := filepath.Join(pub, "roots", "0001.root")
	run("init", "--dir", pub)
	run("device", "init", "--dir", dev, "--root", root, "--kem", "x25519")
	en, _ := os.ReadFile(filepath.Join(dev, "enrollment.txt"))
	run("fleet", "add", "--dir", pub, "--channel", "stable", strings.TrimSpace(string(en)))
	release := func(version string, size int) []byte {
		src := filepath.Join(dir, "build-"+version)
		os.MkdirAll(src, 0o755)
		data := make([]byte, size)
		rand.Read(data)
		os.WriteFile(filepath.Join(src, "firmware.bin"), data, 0o644)
		return data
	}
	v1, v2 := release("1.0.0", 1<<20), release("2.0.0", 8<<20)

	seed := startSeedProc(t, bin, seedDir, root)
	push := func(version string) {
		run("publish", "--dir", pub, "--channel", "stable", "--version", version, filepath.Join(dir, "build-"+version),
			"--seed", seed.admin, "--token-file", seed.tokenFile)
	}
	hooks := filepath.Join(dir, "hooks.log")
	// agent runs the device of directory d (device keys, state, store, and
	// its install directory d/app).
	// The agent's output (at debug level: a line per block received) goes
	// to d/agent.log, replaced at every start.
	agent := func(d string) *exec.Cmd {
		c := exec.Command(bin, "agent", "--dir", d, "--channel", "stable", "--install-dir", filepath.Join(d, "app"),
			"--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--bootstrap", seed.addrs[0],
			"--log-level", "debug",
			// The hook takes a moment, so that kills also land inside it.
			"--install-cmd", "echo $MESHOTA_VERSION >> "+hooks+"; sleep 0.2")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		out, err := os.Create(filepath.Join(d, "agent.log"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		c.Stdout, c.Stderr = out, out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	running := func(d string) []byte {
		b, _ := os.ReadFile(filepath.Join(d, "app", "current", "firmware.bin"))
		return b
	}
	waitFor := func(d string, want []byte, limit time.Duration) time.Duration {
		start := time.Now()
		for !bytes.Equal(running(d), want) {
			if time.Since(start) > limit {
				t.Fatalf("%s: release not installed after %v", d, limit)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(start)
	}
	kill := func(c *exec.Cmd) {
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		c.Wait()
	}
	clone := func(name string) string {
		d := filepath.Join(dir, name)
		if out, err := exec.Command("cp", "-a", dev, d).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		return d
	}
	// storeBlocks lists the blocks in d's store (its agent stopped) by
	// the datastore key of the block's multihash, as the store's own open
	// finds them (after a kill: with a torn tail cut off).
	storeBlocks := func(d string) map[string]bool {
		st, err := store.Open(filepath.Join(d, "store"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		keys, err := st.Blockstore().AllKeysChan(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for c := range keys {
			names[blockName(c)] = true
		}
		return names
	}

	// The old release, installed normally; this device state is the
	// starting point of every trial.
	push("1.0.0")
	a := agent(dev)
	waitFor(dev, v1, 60*time.Second)
	// The agent pins the release just after switching to it: kill it
	// only once it says so, or the trials' GC would rightly collect the
	// old release, which no pin would name.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if lg, _ := os.ReadFile(filepath.Join(dev, "agent.log")); bytes.Contains(lg, []byte(`msg="release installed"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent did not log the installation of the old release")
		}
	}
	kill(a)
	push("2.0.0")
	// How long does the update take from there?
	probe := clone("probe")
	a = agent(probe)
	full := waitFor(probe, v2, 60*time.Second)
	kill(a)
	window := full + full/2 // kills land from start-up to just after the switch
	t.Logf("update takes %v; killing at random in [0, %v]", full.Round(time.Millisecond), window.Round(time.Millisecond))

	// The new release's chunk blocks and, for a device directory, those
	// whose plaintext it holds, in staging or in the placed tree.
	x, bl := releaseIndex(t, pub, dev)
	v2Chunks := map[string]bool{}
	var chunkCIDs []cid.Cid
	{
		probeMap, err := content.NewChunkMap(context.Background(), x, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range bl.All() {
			if probeMap.Lists(c) {
				v2Chunks[blockName(c)] = true
				chunkCIDs = append(chunkCIDs, c)
			}
		}
	}
	stagedChunks := func(d string) map[string]bool {
		out := map[string]bool{}
		trees, _ := filepath.Glob(filepath.Join(d, "app", "staging", "*"))
		placed, _ := filepath.Glob(filepath.Join(d, "app", "releases", "*"))
		for _, tree := range append(trees, placed...) {
			if fi, err := os.Stat(tree); err != nil || !fi.IsDir() {
				continue // the progress file
			}
			for _, c := range chunkCIDs {
				// A map per chunk: a map stops reading a file at its
				// first bad chunk, and staging has holes.
				m, err := content.NewChunkMap(context.Background(), x, tree, nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := m.Get(context.Background(), c); err == nil {
					out[blockName(c)] = true
				}
			}
		}
		return out
	}

	rng := mrand.New(mrand.NewPCG(20261124, 1))
	outcomes := map[string]int{}
	fetchedAfter := 0 // blocks received after restarts
	partial := 0      // kills that left part of the new release's chunks in staging
	for i := range trials {
		d := clone(fmt.Sprintf("trial%02d", i))
		c := agent(d)
		time.Sleep(time.Duration(rng.Int64N(int64(window))))
		kill(c)
		got := running(d)
		switch {
		case bytes.Equal(got, v1):
			outcomes["old"]++
		case bytes.Equal(got, v2):
			outcomes["new"]++
		default:
			t.Fatalf("trial %d: the running release is neither the old nor the new one (%d bytes)", i, len(got))
		}
		kept := storeBlocks(d)
		had := maps.Clone(kept)
		staged := stagedChunks(d)
		for name := range staged {
			had[name] = true
		}
		if len(staged) > 0 && len(staged) < len(chunkCIDs) {
			partial++
		}
		// Restarted, it converges, keeps what it had downloaded and
		// fetches none of it again.
		c = agent(d)
		waitFor(d, v2, 60*time.Second)
		kill(c)
		after := storeBlocks(d)
		received := receivedBlocks(t, filepath.Join(d, "agent.log"))
		for name := range received {
			if had[name] {
				t.Fatalf("trial %d: block %s was verified and kept before the kill, and fetched again after the restart", i, name)
			}
		}
		for name := range after {
			// This checks the record itself: every new block must be in it.
			if !kept[name] && !received[name] {
				t.Fatalf("trial %d: block %s is in the store, was not before the restart, and is not in the log of blocks received", i, name)
			}
			if v2Chunks[name] {
				t.Fatalf("trial %d: chunk block %s still in the store after the install", i, name)
			}
		}
		if len(after) == 0 {
			t.Fatalf("trial %d: no block found in the store of an agent that installed the release", i)
		}
		lost := 0
		for name := range kept {
			if !after[name] && !v2Chunks[name] {
				lost++
			}
		}
		if lost > 0 {
			// What the store and GC said, to tell a collection from a loss.
			lg, _ := os.ReadFile(filepath.Join(d, "agent.log"))
			for line := range strings.Lines(string(lg)) {
				if strings.Contains(line, "garbage collected") || strings.Contains(line, "pack") || strings.Contains(line, "pin") {
					t.Log(strings.TrimSpace(line))
				}
			}
			t.Fatalf("trial %d: the store lost %d blocks other than chunk blocks (%d, then %d)", i, lost, len(kept), len(after))
		}
		fetchedAfter += len(received)
		os.RemoveAll(d)
	}
	t.Logf("%d kills: the old release was running after %d, the new one after %d; %d left part of the new release in staging; every restart converged, receiving %d blocks in all and none it had",
		trials, outcomes["old"], outcomes["new"], partial, fetchedAfter)
	if partial == 0 {
		t.Fatal("no kill landed during the assembly: the check of what staging held was never exercised")
	}
	if outcomes["old"] == 0 || outcomes["new"] == 0 {
		t.Fatalf("kills all landed on one side of the switch (%v): the window does not cover the update", outcomes)
	}
}

// releaseIndex opens the latest release of channel stable, with the
// publisher's blocks and the device's key (as the device's agent opens
// it), and reads its block list.
func releaseIndex(t *testing.T, pubDir, devDir string) (*content.Index, *content.BlockList) {
	t.Helper()
	ctx := context.Background()
	p, err := publisher.Open(pubDir, publisher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	data, err := p.Latest("stable")
	if err != nil {
		t.Fatal(err)
	}
	l := protocol.DefaultLimits
	m, err := protocol.DecodeManifest(data, l)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := crypto.ReadSigningKeyFile(filepath.Join(devDir, deviceSigningKey))
	if err != nil {
		t.Fatal(err)
	}
	dk, err := crypto.ReadDeviceKeyFile(filepath.Join(devDir, deviceHPKEKey))
	if err != nil {
		t.Fatal(err)
	}
	id := protocol.DeviceIDOf(sk.Public())
	bs := p.Store().Blockstore()
	get := func(c cid.Cid) []byte {
		b, err := bs.Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return b.RawData()
	}
	root, err := protocol.ParseKeyringRoot(get(m.Keyring.Root), m, l)
	if err != nil {
		t.Fatal(err)
	}
	idx, sc := root.ShardFor(id)
	shard, err := protocol.ParseKeyringShard(get(sc), root, idx, l)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := protocol.OpenEpochKey(dk, id, shard)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := protocol.OpenReleaseKey(m, &ek)
	if err != nil {
		t.Fatal(err)
	}
	// A memory store for the index pages: the publisher's store only
	// reads.
	mem := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	x, err := content.OpenIndex(ctx, mem, content.StoreSource{Getter: bs}, m.Index, &rk, m.Channel)
	if err != nil {
		t.Fatal(err)
	}
	bl, err := content.ReadBlockList(ctx, bs, m.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	return x, bl
}

// blockName is the datastore key of c's multihash, without the slash.
func blockName(c cid.Cid) string {
	return strings.TrimPrefix(dshelp.MultihashToDsKey(c.Hash()).String(), "/")
}

// receivedBlocks reads an agent's debug log and returns the store file
// names (datastore keys) of the blocks it received from the network.
func receivedBlocks(t *testing.T, logFile string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for line := range strings.Lines(string(data)) {
		if !strings.Contains(line, `msg="block received"`) {
			continue
		}
		_, rest, ok := strings.Cut(line, " cid=")
		if !ok {
			t.Fatalf("block line without a CID: %q", line)
		}
		s, _, _ := strings.Cut(rest, " ")
		c, err := cid.Decode(s)
		if err != nil {
			t.Fatalf("block line %q: %v", line, err)
		}
		names[blockName(c)] = true
	}
	return names
}
