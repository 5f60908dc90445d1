package publisher

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/meshota/meshota/content/store"
	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/node/bundle"
	"github.com/meshota/meshota/protocol"
)

func writeRelease(t *testing.T, dir string, seed uint64, size int) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(filepath.Join(dir, "app.bin"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newDevice(t *testing.T) (*crypto.SigningKey, *crypto.DeviceKey, string) {
	t.Helper()
	sk, err := crypto.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	dk, err := crypto.GenerateDeviceKey(crypto.KEMX25519)
	if err != nil {
		t.Fatal(err)
	}
	en, err := protocol.NewEnrollment(sk, dk, "dev", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return sk, dk, en
}

func TestPublishRolloutRollbackAndBundle(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "pub")
	p, err := Init(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := Init(dir, Options{}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Init err = %v, want ErrExists", err)
	}
	sk, dk, en := newDevice(t)
	id, err := p.AddDevice("stable", en)
	if err != nil || id != protocol.DeviceIDOf(sk.Public()) {
		t.Fatalf("AddDevice = %s, %v", id, err)
	}
	src := writeRelease(t, filepath.Join(t.TempDir(), "v1"), 1, 3<<20)
	r1, err := p.Publish(ctx, Request{Channel: "stable", Version: "1.0.0", Source: src, RolloutBasisPoints: 3000})
	if err != nil {
		t.Fatal(err)
	}
	if r1.Sequence != 1 || r1.Size != 3<<20 || r1.Delta.NewChunks != r1.Delta.Chunks {
		t.Fatalf("first release %+v", r1)
	}
	if _, err := p.Publish(ctx, Request{Channel: "stable", Version: "0.9.0", Source: src}); !errors.Is(err, ErrVersionNotNewer) {
		t.Fatalf("older version err = %v", err)
	}
	if _, err := p.Rollout(ctx, "stable", 2000, 0); !errors.Is(err, ErrNarrowerRollout) {
		t.Fatalf("narrower rollout err = %v", err)
	}
	r2, err := p.Rollout(ctx, "stable", 10000, 0)
	if err != nil || r2.Sequence != 2 {
		t.Fatalf("rollout %+v, %v", r2, err)
	}
	// A second release that changes one region: most chunks are reused.
	b, _ := os.ReadFile(filepath.Join(src, "app.bin"))
	copy(b[1<<20:], bytes.Repeat([]byte{7}, 4096))
	if err := os.WriteFile(filepath.Join(src, "app.bin"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	r3, err := p.Publish(ctx, Request{Channel: "stable", Version: "1.1.0", Source: src})
	if err != nil {
		t.Fatal(err)
	}
	if r3.Delta.NewChunks == 0 || r3.Delta.ReusedFraction() < 0.5 {
		t.Fatalf("delta %+v: a 4 KiB change should reuse most chunks", r3.Delta)
	}
	if _, err := p.Rollback(ctx, "stable", "9.9.9", 0); !errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("rollback to unknown err = %v", err)
	}
	r4, err := p.Rollback(ctx, "stable", "1.0.0", 0)
	if err != nil || r4.Sequence != 4 {
		t.Fatalf("rollback %+v, %v", r4, err)
	}

	// Every manifest validates in order, like a device would see them.
	env, _ := crypto.ParseEnvelope(p.Roots()[0], 64<<10)
	root, err := crypto.VerifyInitialRoot(env, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ts := protocol.NewTrustedState(root)
	var last *protocol.Manifest
	for _, r := range []*Result{r1, r2, r3, r4} {
		m, err := protocol.ValidateManifest(r.Manifest, ts, "stable", time.Now(), protocol.Limits{})
		if err != nil {
			t.Fatalf("manifest %d: %v", r.Sequence, err)
		}
		if err := ts.Accept(m); err != nil {
			t.Fatal(err)
		}
		last = m
	}
	if !last.Rollback || last.RollbackTo != "1.0.0" {
		t.Fatalf("rollback manifest %+v", last)
	}

	// The bundle carries everything a seed needs; the device opens its key.
	var buf bytes.Buffer
	if err := p.WriteBundle(ctx, &buf, "stable"); err != nil {
		t.Fatal(err)
	}
	dst, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	doc, st, err := bundle.Read(ctx, &buf, dst.Blockstore(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc.Manifest, r4.Manifest) || len(doc.Enrollments) != 1 || st.Blocks == 0 {
		t.Fatalf("bundle doc %d enrollments, %d blocks", len(doc.Enrollments), st.Blocks)
	}
	if _, err := bundle.References(ctx, dst.Blockstore(), last, protocol.Limits{}); err != nil {
		t.Fatalf("imported bundle incomplete: %v", err)
	}
	kb, _ := dst.Blockstore().Get(ctx, last.Keyring.Root)
	kr, err := protocol.ParseKeyringRoot(kb.RawData(), last, protocol.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	idx, sc := kr.ShardFor(id)
	sb, _ := dst.Blockstore().Get(ctx, sc)
	shard, err := protocol.ParseKeyringShard(sb.RawData(), kr, idx, protocol.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	epochKey, err := protocol.OpenEpochKey(dk, id, shard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.OpenReleaseKey(last, &epochKey); err != nil {
		t.Fatalf("enrolled device cannot open the release key: %v", err)
	}

	// Revocation: the next manifest is sealed for a new epoch without it.
	if err := p.Revoke("stable", id); err != nil {
		t.Fatal(err)
	}
	if err := p.Revoke("stable", id); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("second revoke err = %v", err)
	}
	r5, err := p.Rollout(ctx, "stable", 10000, 0)
	if err == nil {
		t.Fatalf("rollout at 100%% again succeeded: %+v", r5)
	}
	// Reopening finds the same state.
	p.Close()
	p2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if ds, err := p2.Devices("stable"); err != nil || len(ds) != 0 {
		t.Fatalf("devices after revoke: %v, %v", ds, err)
	}
}

func TestRotateRoot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pub")
	p, err := Init(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := crypto.ParseEnvelope(p.Roots()[0], 64<<10)
	r1, err := crypto.VerifyInitialRoot(first, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	oldRel := p.relKey.Public().ID()
	if v, err := p.RotateRoot(0); err != nil || v != 2 {
		t.Fatalf("RotateRoot = %d, %v", v, err)
	}
	p.Close()
	p, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Root().Version != 2 || len(p.Roots()) != 2 {
		t.Fatalf("reopened at root %d with %d roots", p.Root().Version, len(p.Roots()))
	}
	if p.relKey.Public().ID() == oldRel {
		t.Fatal("release key not replaced")
	}
	env, _ := crypto.ParseEnvelope(p.Roots()[1], 64<<10)
	if _, err := crypto.UpdateRoot(r1, env); err != nil {
		t.Fatalf("a device trusting root 1 refuses root 2: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "keys", "retired", "v1-release.key")); err != nil {
		t.Fatalf("old release key not retired: %v", err)
	}
	// An interrupted rotation (new keys written, no root file) is undone.
	stray, _ := crypto.GenerateSigningKey()
	if err := crypto.WriteSigningKeyFile(filepath.Join(dir, "keys", "root.key.next"), stray); err != nil {
		t.Fatal(err)
	}
	current := p.rootKey.Public().ID()
	p.Close()
	p2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if _, err := os.Stat(filepath.Join(dir, "keys", "root.key.next")); !os.IsNotExist(err) {
		t.Fatal("pending key of an abandoned rotation left behind")
	}
	if p2.rootKey.Public().ID() != current || p2.Root().Version != 2 {
		t.Fatal("an abandoned rotation changed the root key")
	}
}
