package seed

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p"

	"github.com/meshota/meshota/content/store"
	bundlepkg "github.com/meshota/meshota/node/bundle"
	"github.com/meshota/meshota/node/gossip"
	"github.com/meshota/meshota/node/publisher"
	"github.com/meshota/meshota/protocol"
)

func newSeed(t *testing.T, root []byte) *Seed {
	s, _ := newSeedAt(t, root)
	return s
}

// newSeedAt also returns the directory of the seed's block store.
func newSeedAt(t *testing.T, root []byte) (*Seed, string) {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	g, err := gossip.New(t.Context(), h, gossip.Options{})
	if err != nil {
		t.Fatal(err)
	}
	storeDir := filepath.Join(t.TempDir(), "store")
	st, err := store.Open(storeDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := New(Config{Dir: t.TempDir(), Store: st, Host: h, Gossip: g, InitialRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	return s, storeDir
}

func TestImportAndAdminAPI(t *testing.T) {
	ctx := context.Background()
	p, err := publisher.Init(filepath.Join(t.TempDir(), "pub"), publisher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), bytes.Repeat([]byte("meshota"), 100000), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(ctx, publisher.Request{Channel: "stable", Version: "1.0.0", Source: src}); err != nil {
		t.Fatal(err)
	}
	s := newSeed(t, p.Roots()[0])
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go s.Run(runCtx)

	srv := httptest.NewServer(s.AdminHandler("secret-token"))
	defer srv.Close()
	post := func(token string, body []byte) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/admin/import", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	var bundle bytes.Buffer
	if err := p.WriteBundle(ctx, &bundle, "stable"); err != nil {
		t.Fatal(err)
	}
	if resp := post("wrong", bundle.Bytes()); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %s", resp.Status)
	}
	// A truncated bundle is refused and changes nothing.
	if resp := post("secret-token", bundle.Bytes()[:bundle.Len()/2]); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("truncated bundle: %s", resp.Status)
	}
	if s.LatestManifest("stable") != nil {
		t.Fatal("a refused import left a manifest behind")
	}
	if resp := post("secret-token", bundle.Bytes()); resp.StatusCode != http.StatusOK {
		t.Fatalf("import: %s", resp.Status)
	}
	latest, _ := p.Latest("stable")
	// Everything the release references survived the import's GC,
	// including the keyring, which is outside the block list.
	lm, _ := protocol.DecodeManifest(latest, protocol.Limits{})
	if _, err := bundlepkg.References(ctx, s.cfg.Store.Blockstore(), lm, protocol.Limits{}); err != nil {
		t.Fatalf("after import: %v", err)
	}
	if !bytes.Equal(s.LatestManifest("stable"), latest) {
		t.Fatal("seed does not serve the imported manifest")
	}
	// Re-importing the same release is harmless.
	if _, err := s.Import(ctx, bytes.NewReader(bundle.Bytes())); err != nil {
		t.Fatalf("re-import: %v", err)
	}
	// A bundle from another publisher (another root) is refused.
	other, err := publisher.Init(filepath.Join(t.TempDir(), "other"), publisher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Publish(ctx, publisher.Request{Channel: "stable", Version: "9.0.0", Source: src}); err != nil {
		t.Fatal(err)
	}
	var forged bytes.Buffer
	if err := other.WriteBundle(ctx, &forged, "stable"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Import(ctx, &forged)
	if err == nil {
		t.Fatal("seed imported a release signed by an unknown publisher")
	}
	if !bytes.Equal(s.LatestManifest("stable"), latest) {
		t.Fatal("refused import replaced the manifest")
	}
	t.Logf("forged bundle refused: %v", err)
	// An older release is refused once a newer one is in.
	if _, err := p.Publish(ctx, publisher.Request{Channel: "stable", Version: "1.1.0", Source: src}); err != nil {
		t.Fatal(err)
	}
	var newer bytes.Buffer
	if err := p.WriteBundle(ctx, &newer, "stable"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(ctx, &newer); err != nil {
		t.Fatal(err)
	}
	_, err = s.Import(ctx, bytes.NewReader(bundle.Bytes()))
	if !errors.Is(err, protocol.ErrStaleSequence) {
		t.Fatalf("replayed old bundle err = %v, want ErrStaleSequence", err)
	}
}

func TestSeedHoldsNoPlaintext(t *testing.T) {
	ctx := context.Background()
	p, err := publisher.Init(filepath.Join(t.TempDir(), "pub"), publisher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	marker := []byte("MESHOTA-PLAINTEXT-MARKER-7f3a9c")
	src := t.TempDir()
	// The marker repeats, and it also is a whole small file of its own.
	if err := os.WriteFile(filepath.Join(src, "big"), bytes.Repeat(marker, 40000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "marker.txt"), marker, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(ctx, publisher.Request{Channel: "stable", Version: "1.0.0", Source: src}); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := p.WriteBundle(ctx, &b, "stable"); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b.Bytes(), marker) || bytes.Contains(b.Bytes(), []byte("marker.txt")) {
		t.Fatal("the release bundle carries plaintext (content or file names)")
	}
	s, storeDir := newSeedAt(t, p.Roots()[0])
	if _, err := s.Import(ctx, &b); err != nil {
		t.Fatal(err)
	}
	seen := 0 // bytes
	for _, dir := range []string{s.cfg.Dir, storeDir} {
		filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			seen += len(data)
			if bytes.Contains(data, marker) || bytes.Contains(data, []byte("marker.txt")) {
				t.Errorf("seed file %s holds plaintext", path)
			}
			return nil
		})
	}
	if seen < 1<<20 { // the release is 1.2 MB of ciphertext
		t.Fatalf("only %d bytes scanned: the store was not where the test looked", seen)
	}
}
