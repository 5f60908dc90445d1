package agent_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/node/exchange"
	"github.com/meshota/meshota/node/policy"
	"github.com/meshota/meshota/node/publisher"
	"github.com/meshota/meshota/protocol"
)

// line connects the seed to the first device and each device to the next.
func (f *fleet) line() {
	connect(f.t, f.devices[0].n, f.seedN)
	for i := 1; i < len(f.devices); i++ {
		connect(f.t, f.devices[i].n, f.devices[i-1].n)
	}
}

func hookLog(t *testing.T, d *device) string {
	t.Helper()
	b, err := os.ReadFile(d.hooks)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func TestLateJoinerCatchesUp(t *testing.T) {
	f := newFleet(t, 3)
	f.start(f.devices[0], "true")
	f.start(f.devices[1], "true")
	connect(t, f.devices[0].n, f.seedN)
	connect(t, f.devices[1].n, f.devices[0].n)
	src := writeTree(t, 7, 1<<20)
	r := f.ship(f.pub.Publish(f.ctx, publisher.Request{Channel: f.channel, Version: "1.0.0", Source: src}))
	waitFor(t, f.devices[:2], r.Sequence, protocol.StateInstalled, 60*time.Second)
	// The third device starts after the announcement, never meets the seed,
	// and learns of the release by asking its peer on connection.
	late := f.devices[2]
	f.start(late, "true")
	connect(t, late.n, f.devices[1].n)
	waitFor(t, []*device{late}, r.Sequence, protocol.StateInstalled, 60*time.Second)
	sameTree(t, src, late.inst.CurrentPath())
}

func TestRolloutStagesAndOutsidersServe(t *testing.T) {
	f := newFleet(t, 8)
	var buckets []uint32
	for _, d := range f.devices {
		buckets = append(buckets, policy.RolloutBucket(f.channel, protocol.DeviceIDOf(d.sk.Public()).String()))
		f.start(d, "true")
	}
	f.line()
	sorted := slices.Clone(buckets)
	slices.Sort(sorted)
	bp := uint16(sorted[3] + 1) // the four lowest buckets are in
	var in, out []*device
	for i, d := range f.devices {
		if buckets[i] < uint32(bp) {
			in = append(in, d)
		} else {
			out = append(out, d)
		}
	}
	src := writeTree(t, 8, 2<<20)
	r := f.ship(f.pub.Publish(f.ctx, publisher.Request{Channel: f.channel, Version: "1.0.0", Source: src, RolloutBasisPoints: bp}))
	waitFor(t, in, r.Sequence, protocol.StateInstalled, 60*time.Second)
	// Outsiders install nothing but fetch and hold every block, for peers.
	m, _ := protocol.DecodeManifest(r.Manifest, protocol.Limits{})
	deadline := time.Now().Add(60 * time.Second)
	for _, d := range out {
		for !holdsRelease(t, d.n.st.Blockstore(), m) {
			if time.Now().After(deadline) {
				t.Fatalf("device outside the rollout does not hold the release's blocks")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if cur, _ := d.inst.Current(); cur != "" || hookLog(t, d) != "" {
			t.Fatalf("device outside the rollout installed %q", cur)
		}
	}
	// Widening: the rest install, the first stage does not install again.
	served := f.seedN.ex.Traffic().Served
	r2 := f.ship(f.pub.Rollout(f.ctx, f.channel, 10000, 0))
	waitFor(t, f.devices, r2.Sequence, protocol.StateInstalled, 60*time.Second)
	for _, d := range in {
		if got := hookLog(t, d); got != "1 1.0.0 0\n" {
			t.Fatalf("first-stage device hooks %q", got)
		}
	}
	for _, d := range out {
		if got := hookLog(t, d); got != "2 1.0.0 0\n" {
			t.Fatalf("second-stage device hooks %q", got)
		}
		sameTree(t, src, d.inst.CurrentPath())
	}
	if more := f.seedN.ex.Traffic().Served - served; more != 0 {
		t.Fatalf("widening the rollout cost the seed %d bytes; the blocks were already in the fleet", more)
	}
}

func holdsRelease(t *testing.T, bs blockstore.Blockstore, m *protocol.Manifest) bool {
	bl, err := content.ReadBlockList(context.Background(), bs, m.Blocks)
	if err != nil {
		return false
	}
	for _, c := range bl.All() {
		if has, _ := bs.Has(context.Background(), c); !has {
			return false
		}
	}
	return true
}

func TestHealthCheckFailureAndPublisherRollback(t *testing.T) {
	f := newFleet(t, 3)
	for i, d := range f.devices {
		health := "true"
		if i == 2 {
			health = `test "$MESHOTA_VERSION" != 1.1.0`
		}
		f.start(d, health)
	}
	f.line()
	v1 := writeTree(t, 1, 1<<20)
	r1 := f.ship(f.pub.Publish(f.ctx, publisher.Request{Channel: f.channel, Version: "1.0.0", Source: v1}))
	waitFor(t, f.devices, r1.Sequence, protocol.StateInstalled, 60*time.Second)
	v2 := writeTree(t, 2, 1<<20)
	r2 := f.ship(f.pub.Publish(f.ctx, publisher.Request{Channel: f.channel, Version: "1.1.0", Source: v2}))
	waitFor(t, f.devices[:2], r2.Sequence, protocol.StateInstalled, 60*time.Second)
	waitFor(t, f.devices[2:], r2.Sequence, protocol.StateRolledBack, 60*time.Second)
	sameTree(t, v1, f.devices[2].inst.CurrentPath())
	if got := hookLog(t, f.devices[2]); got != "1 1.0.0 0\n2 1.1.0 0\n1 1.0.0 1\n" {
		t.Fatalf("hooks of the device that failed its health check: %q", got)
	}
	// The seed's status shows the rollback with its reason.
	deadline := time.Now().Add(30 * time.Second)
	for {
		snap := f.seed.Aggregator().Snapshot()
		if len(snap.Channels) == 1 && len(snap.Channels[0].Failures) == 1 &&
			strings.Contains(snap.Channels[0].Failures[0].Error, "health check failed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status does not show the rollback: %+v", snap)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The publisher rolls the whole channel back to 1.0.0.
	r3 := f.ship(f.pub.Rollback(f.ctx, f.channel, "1.0.0", 0))
	waitFor(t, f.devices, r3.Sequence, protocol.StateInstalled, 60*time.Second)
	for _, d := range f.devices {
		sameTree(t, v1, d.inst.CurrentPath())
	}
}

func TestRevokedAndUnenrolledDevicesCannotRead(t *testing.T) {
	f := newFleet(t, 3)
	stranger := f.newDevice(false)
	stranger.n.ex.SetSeeds(nil)
	f.devices = append(f.devices, stranger)
	revoked := f.devices[2]
	if err := f.pub.Revoke(f.channel, protocol.DeviceIDOf(revoked.sk.Public())); err != nil {
		t.Fatal(err)
	}
	for _, d := range f.devices {
		f.start(d, "true")
	}
	f.line()
	src := writeTree(t, 3, 1<<20)
	r := f.ship(f.pub.Publish(f.ctx, publisher.Request{Channel: f.channel, Version: "1.0.0", Source: src}))
	waitFor(t, f.devices[:2], r.Sequence, protocol.StateInstalled, 60*time.Second)
	for _, d := range []*device{revoked, stranger} {
		deadline := time.After(60 * time.Second)
		for done := false; !done; {
			select {
			case e := <-d.a.Events():
				if e.State == protocol.StateInstalled {
					t.Fatal("a device without a keyring entry installed the release")
				}
				if e.State == protocol.StateFailed {
					if !errors.Is(e.Err, protocol.ErrNotInKeyring) {
						t.Fatalf("failure %v, want ErrNotInKeyring", e.Err)
					}
					done = true
				}
			case <-deadline:
				t.Fatal("device without a keyring entry did not report its failure")
			}
		}
		if cur, _ := d.inst.Current(); cur != "" {
			t.Fatal("release installed on a device that cannot read it")
		}
	}
}

// lyingStore serves every block it has with the wrong bytes.
type lyingStore struct{ blockstore.Blockstore }

func (l lyingStore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	b, err := l.Blockstore.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	return blocks.NewBlockWithCid(append([]byte("evil"), b.RawData()...), c)
}

func TestMaliciousPeerDoesNotStopTheFleet(t *testing.T) {
	f := newFleet(t, 4)
	for _, d := range f.devices {
		f.start(d, "true")
	}
	// The attacker: a host with plain gossipsub (no validator) and a
	// bitswap that answers with wrong bytes for every block of the release.
	ctx := f.ctx
	evilHost, topic := gossipPeer(t, ctx, f.channel, nil)
	evilStore := lyingStore{f.pub.Store().Blockstore()}
	evilEx := exchange.New(ctx, exchange.Config{Host: evilHost, Blockstore: evilStore})
	defer evilEx.Close()
	evil := &node{h: evilHost}
	f.line()
	for _, d := range f.devices {
		connect(t, evil, d.n)
	}
	time.Sleep(1500 * time.Millisecond) // meshes form
	for i := range 30 {
		if err := topic.Publish(ctx, []byte("forged manifest "+strings.Repeat("x", i))); err != nil {
			t.Fatal(err)
		}
	}
	src := writeTree(t, 4, 2<<20)
	r := f.ship(f.pub.Publish(ctx, publisher.Request{Channel: f.channel, Version: "1.0.0", Source: src}))
	waitFor(t, f.devices, r.Sequence, protocol.StateInstalled, 90*time.Second)
	for _, d := range f.devices {
		sameTree(t, src, d.inst.CurrentPath())
	}
	t.Logf("the attacker served %d bytes of garbage", evilEx.Traffic().Served)
	// Every device that heard the forgeries scores the attacker below zero.
	deadline := time.Now().Add(20 * time.Second)
	for i, d := range f.devices {
		for {
			score, known := d.n.g.Scores()[evilHost.ID()]
			if known && score < 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("device %d scores the attacker %v (known %v), want below 0", i, score, known)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func TestFleetFollowsRootRotation(t *testing.T) {
	f := newFleet(t, 3)
	for _, d := range f.devices {
		f.start(d, "true")
	}
	f.line()
	v1 := writeTree(t, 1, 1<<20)
	r1 := f.ship(f.pub.Publish(f.ctx, publisher.Request{Channel: f.channel, Version: "1.0.0", Source: v1}))
	waitFor(t, f.devices, r1.Sequence, protocol.StateInstalled, 60*time.Second)
	// New root and release keys: devices trust root 1 and learn root 2 from
	// their peers when the first manifest signed under it arrives.
	if v, err := f.pub.RotateRoot(0); err != nil || v != 2 {
		t.Fatalf("RotateRoot = %d, %v", v, err)
	}
	v2 := writeTree(t, 2, 1<<20)
	r2 := f.ship(f.pub.Publish(f.ctx, publisher.Request{Channel: f.channel, Version: "2.0.0", Source: v2}))
	waitFor(t, f.devices, r2.Sequence, protocol.StateInstalled, 60*time.Second)
	for _, d := range f.devices {
		sameTree(t, v2, d.inst.CurrentPath())
	}
}

func TestDamagedStateIsRebuilt(t *testing.T) {
	f := newFleet(t, 1)
	d := f.devices[0]
	ctx, stop := context.WithCancel(f.ctx)
	f.startCtx(ctx, d, "true")
	connect(t, d.n, f.seedN)
	v1 := writeTree(t, 1, 512<<10)
	r1 := f.ship(f.pub.Publish(f.ctx, publisher.Request{Channel: f.channel, Version: "1.0.0", Source: v1}))
	waitFor(t, f.devices, r1.Sequence, protocol.StateInstalled, 60*time.Second)
	stop()
	time.Sleep(200 * time.Millisecond)
	// Power loss mid-write on a bad disk: the state file is cut short.
	path := filepath.Join(d.state, "agent.state")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	f.start(d, "true")
	sameTree(t, v1, d.inst.CurrentPath()) // the running release is untouched
	matches, _ := filepath.Glob(path + ".corrupt-*")
	if len(matches) != 1 {
		t.Fatalf("damaged state not kept aside: %v", matches)
	}
	v2 := writeTree(t, 2, 512<<10)
	r2 := f.ship(f.pub.Publish(f.ctx, publisher.Request{Channel: f.channel, Version: "1.1.0", Source: v2}))
	waitFor(t, f.devices, r2.Sequence, protocol.StateInstalled, 60*time.Second)
	sameTree(t, v2, d.inst.CurrentPath())
}

// syncBuffer is a log sink tests can read while the agent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDiskFullThenFreed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root (CI runs as root)")
	}
	f := newFleet(t, 1)
	d := f.devices[0]
	// The device's store lives on a 3 MiB tmpfs; releases install elsewhere.
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	d.n.close()
	d.n = newNodeAt(t, f.ctx, filepath.Join(mnt, "store"))
	d.n.ex.SetSeeds([]peer.ID{f.seedN.h.ID()})
	var logs syncBuffer
	f.startLogged(d, "true", slog.New(slog.NewTextHandler(&logs, nil)))
	connect(t, d.n, f.seedN)
	v1 := writeTree(t, 1, 1<<20)
	r1 := f.ship(f.pub.Publish(f.ctx, publisher.Request{Channel: f.channel, Version: "1.0.0", Source: v1}))
	waitFor(t, f.devices, r1.Sequence, protocol.StateInstalled, 60*time.Second)
	// 1.1.0 does not fit: the agent says so and keeps running 1.0.0.
	v2 := writeTree(t, 2, 4<<20)
	r2 := f.ship(f.pub.Publish(f.ctx, publisher.Request{Channel: f.channel, Version: "1.1.0", Source: v2}))
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(logs.String(), "not enough disk space") {
		if time.Now().After(deadline) {
			t.Fatalf("no clear disk-full error in the agent's log:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	sameTree(t, v1, d.inst.CurrentPath())
	// Space freed: the retry completes.
	if out, err := exec.Command("mount", "-o", "remount,size=64m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	waitFor(t, f.devices, r2.Sequence, protocol.StateInstalled, 60*time.Second)
	sameTree(t, v2, d.inst.CurrentPath())
}

func TestStoreKeepsTheLastTwoReleases(t *testing.T) {
	f := newFleet(t, 1)
	d := f.devices[0]
	f.start(d, "true")
	connect(t, d.n, f.seedN)
	var manifests []*protocol.Manifest
	for i, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		src := writeTree(t, uint64(10+i), 512<<10)
		r := f.ship(f.pub.Publish(f.ctx, publisher.Request{Channel: f.channel, Version: v, Source: src}))
		waitFor(t, f.devices, r.Sequence, protocol.StateInstalled, 60*time.Second)
		m, _ := protocol.DecodeManifest(r.Manifest, protocol.Limits{})
		manifests = append(manifests, m)
	}
	count := func(m *protocol.Manifest) (have, total int) {
		bl, err := content.ReadBlockList(f.ctx, f.pub.Store().Blockstore(), m.Blocks)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range bl.All() {
			total++
			if ok, _ := d.n.st.Blockstore().Has(f.ctx, c); ok {
				have++
			}
		}
		return have, total
	}
	if have, total := count(manifests[0]); have != 0 {
		t.Fatalf("the oldest release still holds %d of its %d blocks after two newer ones", have, total)
	}
	for _, m := range manifests[1:] {
		if have, total := count(m); have != total {
			t.Fatalf("release %s keeps %d of %d blocks; the last two must stay whole", m.Version, have, total)
		}
		if ok, _ := d.n.st.Blockstore().Has(f.ctx, m.Keyring.Root); !ok {
			t.Fatalf("release %s lost its keyring root", m.Version)
		}
	}
}
