package protocol

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/meshota/meshota/crypto"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/")

// vector is one golden test vector: the exact bytes of a document (hex), and
// for content-addressed blocks their CID. docs/PROTOCOL.md points to them.
type vector struct {
	Name  string `json:"name"`
	Note  string `json:"note,omitempty"`
	Hex   string `json:"hex"`
	CID   string `json:"cid,omitempty"`
	Topic string `json:"topic,omitempty"` // channel of the topic it arrives on
	Want  string `json:"want,omitempty"`  // expected verdict: "ok" or an error sentinel's name
}

// checkGolden compares got with testdata/name, or rewrites it under -update.
func checkGolden(t *testing.T, name string, got []vector) {
	t.Helper()
	path := filepath.Join("testdata", name)
	data, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, '\n')
	if *update {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./protocol -run %s -update to create it)", err, t.Name())
	}
	var wantV []vector
	if err := json.Unmarshal(want, &wantV); err != nil {
		t.Fatal(err)
	}
	if len(wantV) != len(got) {
		t.Fatalf("%s: %d vectors, want %d", name, len(got), len(wantV))
	}
	for i := range got {
		if got[i] != wantV[i] {
			t.Errorf("%s: vector %q changed:\n got %+v\nwant %+v\n(if the format change is intended, run with -update and document it)", name, wantV[i].Name, got[i], wantV[i])
		}
	}
}

func loadVectors(t *testing.T, name string) []vector {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("%v (run go test ./protocol -run Golden -update to create it)", err)
	}
	var vs []vector
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoldenDocuments pins the encoding of every unsigned document: the
// payloads of a manifest, a rollback manifest and a status report, the
// keyring blocks, the catch-up messages and the device ID's text form. Each
// stored vector is also decoded and must pass the decoder's rules.
func TestGoldenDocuments(t *testing.T) {
	var vs []vector
	add := func(name, note string, b []byte) {
		vs = append(vs, vector{Name: name, Note: note, Hex: hex.EncodeToString(b)})
	}
	m := baseManifest()
	p, err := EncodeManifest(m, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	add("manifest-payload", "baseManifest in manifest_test.go; sealed key is a placeholder", p)
	rb := baseManifest()
	rb.Sequence, rb.Supersedes, rb.Version, rb.Rollback, rb.RollbackTo = 8, 7, "1.3.2", true, "1.3.2"
	p, err = EncodeManifest(rb, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	add("rollback-manifest-payload", "sequence 8 returns the channel to 1.3.2", p)
	p, err = EncodeStatusReport(baseReport(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	add("status-report-payload", "baseReport in report_test.go", p)
	rootBlk, shards, err := buildKeyringBlocks("stable", 2, fakeEntries(100), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	vs = append(vs, vector{Name: "keyring-root", Note: "100 fake entries, epoch 2: 2 shards", Hex: hex.EncodeToString(rootBlk.Data), CID: rootBlk.CID.String()})
	for i, s := range shards {
		vs = append(vs, vector{Name: "keyring-shard-" + string(rune('0'+i)), Hex: hex.EncodeToString(s.Data), CID: s.CID.String()})
	}
	for _, e := range []struct {
		name string
		v    interface{ Encode() ([]byte, error) }
	}{
		{"latest-manifest-request", &LatestManifestRequest{Channel: "stable", HaveSequence: 6}},
		{"latest-manifest-response-empty", &LatestManifestResponse{}},
		{"root-chain-request", &RootChainRequest{HaveVersion: 1}},
	} {
		b, err := e.v.Encode()
		if err != nil {
			t.Fatal(err)
		}
		add(e.name, "", b)
	}
	id := DeviceID{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	vs = append(vs, vector{Name: "device-id", Note: id.String(), Hex: hex.EncodeToString(id[:])})
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	sk, err := crypto.SigningKeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	did := DeviceIDOf(sk.Public())
	vs = append(vs, vector{Name: "device-id-of-key", Note: "Ed25519 key from seed 01..20 (hex " + hex.EncodeToString(sk.Public().Bytes()) + ") gives " + did.String(), Hex: hex.EncodeToString(did[:])})
	checkGolden(t, "documents.json", vs)

	// The stored bytes decode under the rules (not only the fresh ones).
	if _, err := decodeManifestPayload(mustHex(t, vs[0].Hex), DefaultLimits); err != nil {
		t.Errorf("stored manifest payload: %v", err)
	}
	if _, err := decodeManifestPayload(mustHex(t, vs[1].Hex), DefaultLimits); err != nil {
		t.Errorf("stored rollback payload: %v", err)
	}
	if _, err := decodeStatusPayload(mustHex(t, vs[2].Hex), DefaultLimits); err != nil {
		t.Errorf("stored report payload: %v", err)
	}
	root, err := ParseKeyringRoot(mustHex(t, vs[3].Hex), &Manifest{Channel: "stable", Keyring: KeyringRef{Root: rootBlk.CID, Epoch: 2}}, Limits{})
	if err != nil {
		t.Fatalf("stored keyring root: %v", err)
	}
	for i := range shards {
		if _, err := ParseKeyringShard(mustHex(t, vs[4+i].Hex), root, uint32(i), Limits{}); err != nil {
			t.Errorf("stored shard %d: %v", i, err)
		}
	}
}
