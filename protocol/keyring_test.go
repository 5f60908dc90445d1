package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/protocol/codec"
)

// fakeIDs returns n distinct, deterministic device IDs.
func fakeIDs(n int) []DeviceID {
	ids := make([]DeviceID, n)
	for i := range ids {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		h := sha256.Sum256(b[:])
		copy(ids[i][:], h[:])
	}
	slices.SortFunc(ids, func(a, b DeviceID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

func fakeEntries(n int) []KeyringEntry {
	ids := fakeIDs(n)
	es := make([]KeyringEntry, n)
	for i, id := range ids {
		es[i] = KeyringEntry{Device: id, Sealed: append([]byte("sealed-"), id[:]...)}
	}
	return es
}

func TestShardIndex(t *testing.T) {
	id := DeviceID{0b1011_0000, 0xff, 0, 0}
	cases := []struct {
		bits uint8
		want uint32
	}{{0, 0}, {1, 1}, {2, 2}, {4, 0b1011}, {12, 0b1011_0000_1111}, {15, 0b1011_0000_1111_111}}
	for _, c := range cases {
		if got := ShardIndex(id, c.bits); got != c.want {
			t.Errorf("ShardIndex(bits=%d) = %b, want %b", c.bits, got, c.want)
		}
	}
}

func TestKeyringLayout(t *testing.T) {
	for _, n := range []int{0, 1, 64, 65, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			l := DefaultLimits
			es := fakeEntries(n)
			rootBlk, shards, err := buildKeyringBlocks("stable", 2, es, l)
			if err != nil {
				t.Fatal(err)
			}
			m := &Manifest{Channel: "stable", Keyring: KeyringRef{Root: rootBlk.CID, Epoch: 2}}
			root, err := ParseKeyringRoot(rootBlk.Data, m, l)
			if err != nil {
				t.Fatal(err)
			}
			if len(shards) != root.NumShards() || root.Devices != uint64(n) {
				t.Fatalf("%d shards, root says %d (%d devices)", len(shards), root.NumShards(), root.Devices)
			}
			if n > 0 && n/root.NumShards() > TargetShardEntries {
				t.Fatalf("%d entries over %d shards exceeds the target mean", n, root.NumShards())
			}
			for _, e := range es {
				i, c := root.ShardFor(e.Device)
				if !c.Equals(shards[i].CID) {
					t.Fatalf("root names %s for shard %d, block is %s", c, i, shards[i].CID)
				}
				s, err := ParseKeyringShard(shards[i].Data, root, i, l)
				if err != nil {
					t.Fatal(err)
				}
				got, err := s.Find(e.Device)
				if err != nil || !bytes.Equal(got, e.Sealed) {
					t.Fatalf("Find = %x, %v", got, err)
				}
			}
			s, _ := ParseKeyringShard(shards[0].Data, root, 0, l)
			if _, err := s.Find(DeviceID{}); !errors.Is(err, ErrNotInKeyring) {
				t.Fatalf("Find(absent) = %v", err)
			}
		})
	}
}

func TestKeyringMixAndMatch(t *testing.T) {
	l := DefaultLimits
	es := fakeEntries(300)
	rootBlk, shards, err := buildKeyringBlocks("stable", 2, es, l)
	if err != nil {
		t.Fatal(err)
	}
	otherRoot, otherShards, _ := buildKeyringBlocks("edge", 2, es, l)
	epoch3Root, _, _ := buildKeyringBlocks("stable", 3, es, l)
	good := &Manifest{Channel: "stable", Keyring: KeyringRef{Root: rootBlk.CID, Epoch: 2}}
	rootCases := []struct {
		name string
		data []byte
		m    *Manifest
		want error
	}{
		{"ok", rootBlk.Data, good, nil},
		{"other bytes", otherRoot.Data, good, ErrCIDMismatch},
		{"flipped byte", flip(rootBlk.Data, 5), good, ErrCIDMismatch},
		{"other channel behind right CID", otherRoot.Data, &Manifest{Channel: "stable", Keyring: KeyringRef{Root: otherRoot.CID, Epoch: 2}}, ErrKeyringMismatch},
		{"other epoch behind right CID", epoch3Root.Data, &Manifest{Channel: "stable", Keyring: KeyringRef{Root: epoch3Root.CID, Epoch: 2}}, ErrKeyringMismatch},
		{"too large", make([]byte, l.MaxKeyringRootBytes+1), good, ErrTooLarge},
	}
	for _, c := range rootCases {
		t.Run("root/"+c.name, func(t *testing.T) {
			_, err := ParseKeyringRoot(c.data, c.m, l)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("ParseKeyringRoot = %v, want %v", err, c.want)
			}
		})
	}
	root, _ := ParseKeyringRoot(rootBlk.Data, good, l)
	shardCases := []struct {
		name  string
		data  []byte
		index uint32
		want  error
	}{
		{"ok", shards[1].Data, 1, nil},
		{"wrong position", shards[1].Data, 2, ErrCIDMismatch},
		{"other keyring's shard", otherShards[1].Data, 1, ErrCIDMismatch},
		{"index out of range", shards[1].Data, uint32(len(shards)), ErrInvalidField},
		{"too large", make([]byte, l.MaxShardBytes+1), 1, ErrTooLarge},
	}
	for _, c := range shardCases {
		t.Run("shard/"+c.name, func(t *testing.T) {
			_, err := ParseKeyringShard(c.data, root, c.index, l)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("ParseKeyringShard = %v, want %v", err, c.want)
			}
		})
	}
}

// TestKeyringShardRules forges shards whose root names them correctly, so
// only the shard's own rules can refuse them.
func TestKeyringShardRules(t *testing.T) {
	l := DefaultLimits
	es := fakeEntries(200) // 4 shards
	rootBlk, _, err := buildKeyringBlocks("stable", 2, es, l)
	if err != nil {
		t.Fatal(err)
	}
	root, err := ParseKeyringRoot(rootBlk.Data, &Manifest{Channel: "stable", Keyring: KeyringRef{Root: rootBlk.CID, Epoch: 2}}, l)
	if err != nil {
		t.Fatal(err)
	}
	in0 := func() []KeyringEntry {
		var out []KeyringEntry
		for _, e := range es {
			if ShardIndex(e.Device, root.ShardBits) == 0 {
				out = append(out, e)
			}
		}
		return out
	}
	cases := []struct {
		name string
		s    KeyringShard
		l    Limits
		want error
	}{
		{"ok", KeyringShard{"stable", 2, 0, in0()}, l, nil},
		{"other channel", KeyringShard{"edge", 2, 0, in0()}, l, ErrKeyringMismatch},
		{"other epoch", KeyringShard{"stable", 1, 0, in0()}, l, ErrKeyringMismatch},
		{"other index", KeyringShard{"stable", 2, 1, in0()}, l, ErrKeyringMismatch},
		{"unsorted", KeyringShard{"stable", 2, 0, reversed(in0())}, l, ErrInvalidField},
		{"duplicate", KeyringShard{"stable", 2, 0, append(in0()[:1], in0()[0])}, l, ErrInvalidField},
		{"foreign device", KeyringShard{"stable", 2, 0, []KeyringEntry{{Device: DeviceID{0xff}, Sealed: []byte{1}}}}, l, ErrInvalidField},
		{"empty sealed key", KeyringShard{"stable", 2, 0, []KeyringEntry{{Device: DeviceID{}, Sealed: nil}}}, l, ErrLimitExceeded},
		{"too many entries", KeyringShard{"stable", 2, 0, in0()}, Limits{MaxShardEntries: 16}, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.s.Entries == nil {
				c.s.Entries = []KeyringEntry{}
			}
			data, err := codec.Marshal(&c.s)
			if err != nil {
				t.Fatal(err)
			}
			r := *root
			r.Shards = bytes.Clone(root.Shards)
			copy(r.Shards[0:32], RawCID(data).Hash()[2:])
			_, err = ParseKeyringShard(data, &r, 0, c.l)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("ParseKeyringShard = %v, want %v", err, c.want)
			}
		})
	}
}

func reversed(es []KeyringEntry) []KeyringEntry {
	out := slices.Clone(es)
	slices.Reverse(out)
	return out
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func TestDeviceIDText(t *testing.T) {
	id := fakeIDs(1)[0]
	s := id.String()
	if len(s) != 30 || s[:4] != "dev-" {
		t.Fatalf("printable form %q", s)
	}
	back, err := ParseDeviceID(s)
	if err != nil || back != id {
		t.Fatalf("ParseDeviceID(%q) = %v, %v", s, back, err)
	}
	for _, bad := range []string{"", "dev-", s[4:], "DEV-" + s[4:], "dev-" + bytes.NewBufferString(s[4:]).String()[:25], s + "a", "dev-" + string(bytes.ToUpper([]byte(s[4:]))), "dev-11111111111111111111111111"} {
		if _, err := ParseDeviceID(bad); !errors.Is(err, ErrInvalidField) {
			t.Errorf("ParseDeviceID(%q) = %v, want ErrInvalidField", bad, err)
		}
	}
}

// BenchmarkKeyringLayout measures only the sharding and encoding of a
// 100,000-device keyring (entries of the hybrid ML-KEM-768+X25519 sealed
// size), against the baseline of one unsharded list every device would
// have to download.
func BenchmarkKeyringLayout(b *testing.B) {
	const n = 100_000
	sealedSize := crypto.SealedKeySize(crypto.KEMMLKEM768X25519)
	es := fakeEntries(n)
	for i := range es {
		es[i].Sealed = bytes.Repeat([]byte{byte(i)}, sealedSize)
	}
	var root Block
	var shards []Block
	for b.Loop() {
		var err error
		if root, shards, err = buildKeyringBlocks("stable", 1, es, DefaultLimits); err != nil {
			b.Fatal(err)
		}
	}
	total, largest := 0, 0
	for _, s := range shards {
		total += len(s.Data)
		largest = max(largest, len(s.Data))
	}
	b.ReportMetric(float64(len(shards)), "shards")
	b.ReportMetric(float64(len(root.Data)), "root-bytes")
	b.ReportMetric(float64(largest), "largest-shard-bytes")
	b.ReportMetric(float64(total)/float64(len(root.Data)+largest), "x-less-than-unsharded")
}
