package statefile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

type state struct {
	Seq     uint64            `cbor:"1,keyasint"`
	Version string            `cbor:"2,keyasint"`
	Peers   map[string]uint64 `cbor:"3,keyasint,omitempty"`
}

func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.state")
	var s state
	if err := Load(path, &s); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	for i, want := range []state{{Seq: 1, Version: "1.0.0"}, {Seq: 2, Version: "1.1.0", Peers: map[string]uint64{"a": 3}}} {
		if err := Save(path, want); err != nil {
			t.Fatal(err)
		}
		var got state
		if err := Load(path, &got); err != nil {
			t.Fatal(err)
		}
		if got.Seq != want.Seq || got.Version != want.Version || len(got.Peers) != len(want.Peers) {
			t.Fatalf("save %d: got %+v, want %+v", i, got, want)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %d entries", len(entries))
	}
}

func TestDamageIsDetected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.state")
	if err := Save(path, state{Seq: 7, Version: "2.0.0"}); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	damage := map[string][]byte{
		"truncated":   good[:len(good)-5],
		"empty":       {},
		"flipped bit": flip(good, 3),
		"flipped sum": flip(good, len(good)-1),
	}
	for name, data := range damage {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			var s state
			if err := Load(path, &s); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x10
	return c
}

func FuzzLoad(f *testing.F) {
	dir := f.TempDir()
	seed := filepath.Join(dir, "seed")
	if err := Save(seed, state{Seq: 1, Version: "x"}); err != nil {
		f.Fatal(err)
	}
	b, _ := os.ReadFile(seed)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "s")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var s state
		if err := Load(path, &s); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		// Whatever loads must save back to the same bytes.
		out := filepath.Join(t.TempDir(), "o")
		if err := Save(out, s); err != nil {
			t.Fatal(err)
		}
		if again, _ := os.ReadFile(out); string(again) != string(data) {
			t.Fatal("accepted a file that does not round-trip")
		}
	})
}
