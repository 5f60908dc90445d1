package protocol

import (
	"bytes"
	"testing"

	"github.com/meshota/meshota/protocol/codec"
)

// Every decoder must refuse or return a document that satisfies its rules
// and re-encodes to exactly the input (canonical form), whatever the bytes.

func FuzzDecodeManifestPayload(f *testing.F) {
	p, _ := EncodeManifest(baseManifest(), Limits{})
	f.Add(p)
	rb := baseManifest()
	rb.Rollback, rb.RollbackTo = true, rb.Version
	p, _ = EncodeManifest(rb, Limits{})
	f.Add(p)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeManifestPayload(data, DefaultLimits)
		if err != nil {
			return
		}
		if err := m.check(DefaultLimits); err != nil {
			t.Fatalf("decoded manifest breaks a rule: %v", err)
		}
		again, err := codec.Marshal(m)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted non-canonical manifest")
		}
	})
}

func FuzzDecodeStatusPayload(f *testing.F) {
	p, _ := EncodeStatusReport(baseReport(), Limits{})
	f.Add(p)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeStatusPayload(data, DefaultLimits)
		if err != nil {
			return
		}
		if len(r.Error) > DefaultLimits.MaxErrorLen || r.State == 0 {
			t.Fatal("decoded report breaks a bound")
		}
		again, err := codec.Marshal(r)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted non-canonical report")
		}
	})
}

func FuzzParseKeyring(f *testing.F) {
	rootBlk, shards, err := buildKeyringBlocks("stable", 2, fakeEntries(100), DefaultLimits)
	if err != nil {
		f.Fatal(err)
	}
	m := &Manifest{Channel: "stable", Keyring: KeyringRef{Root: rootBlk.CID, Epoch: 2}}
	root, err := ParseKeyringRoot(rootBlk.Data, m, DefaultLimits)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rootBlk.Data, false)
	f.Add(shards[0].Data, true)
	f.Fuzz(func(t *testing.T, data []byte, asShard bool) {
		// The CID check comes first, so fuzz the decoder behind it by
		// pointing the reference at whatever bytes we got.
		if asShard {
			r := *root
			r.Shards = bytes.Clone(root.Shards)
			copy(r.Shards[:32], RawCID(data).Hash()[2:])
			s, err := ParseKeyringShard(data, &r, 0, DefaultLimits)
			if err != nil {
				return
			}
			if len(s.Entries) > DefaultLimits.MaxShardEntries || s.Index != 0 || s.Channel != "stable" {
				t.Fatal("accepted a shard breaking a rule")
			}
			return
		}
		mm := *m
		mm.Keyring.Root = RawCID(data)
		r, err := ParseKeyringRoot(data, &mm, DefaultLimits)
		if err != nil {
			return
		}
		if len(r.Shards) != 32*r.NumShards() || int(r.ShardBits) > DefaultLimits.MaxShardBits {
			t.Fatal("accepted a root breaking a rule")
		}
		r.ShardFor(DeviceID{0xff, 0xff, 0xff, 0xff}) // must not panic
	})
}

func FuzzParseDeviceID(f *testing.F) {
	f.Add(DeviceID{1, 2, 3}.String())
	f.Add("dev-")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseDeviceID(s)
		if err == nil && id.String() != s {
			t.Fatalf("accepted non-canonical %q", s)
		}
	})
}
