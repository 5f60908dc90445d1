package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/protocol/codec"
	mh "github.com/multiformats/go-multihash"
)

// testNow is the reference time of every test and golden vector.
var testNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func fixedKey(b byte) crypto.SymmetricKey {
	var k crypto.SymmetricKey
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

// baseManifest is a valid manifest (sealed key bytes are placeholders of
// the right length; tests that open it seal it for real).
func baseManifest() *Manifest {
	return &Manifest{
		Channel:            "stable",
		Sequence:           7,
		Version:            "1.4.0",
		Created:            testNow.Add(-time.Hour),
		Expires:            testNow.Add(30 * 24 * time.Hour),
		RootVersion:        1,
		Size:               10 << 20,
		BlockBytes:         10<<20 + 40*16,
		BlockCount:         40,
		Index:              RawCID([]byte("index")),
		Blocks:             RawCID([]byte("blocks")),
		Keyring:            KeyringRef{Root: RawCID([]byte("keyring")), Epoch: 3},
		SealedReleaseKey:   bytes.Repeat([]byte{0xab}, sealedKeyLen),
		RolloutBasisPoints: 2500,
		Supersedes:         6,
	}
}

func TestManifestFieldRules(t *testing.T) {
	v0 := cid.NewCidV0(RawCID([]byte("x")).Hash())
	blake, _ := mh.Sum([]byte("x"), mh.BLAKE3, 32)
	cases := []struct {
		name string
		mut  func(*Manifest)
		want error
	}{
		{"valid", func(*Manifest) {}, nil},
		{"valid rollback", func(m *Manifest) { m.Rollback, m.RollbackTo = true, m.Version }, nil},
		{"valid full rollout", func(m *Manifest) { m.RolloutBasisPoints = 10000 }, nil},
		{"bad channel", func(m *Manifest) { m.Channel = "Stable" }, ErrInvalidField},
		{"zero sequence", func(m *Manifest) { m.Sequence, m.Supersedes = 0, 0 }, ErrInvalidField},
		{"supersedes itself", func(m *Manifest) { m.Supersedes = m.Sequence }, ErrInvalidField},
		{"bad version", func(m *Manifest) { m.Version = "1.4" }, ErrInvalidField},
		{"long version", func(m *Manifest) { m.Version = "1.0.0-" + strings.Repeat("a", 100) }, ErrLimitExceeded},
		{"no expiry", func(m *Manifest) { m.Expires = time.Time{} }, ErrInvalidField},
		{"expires before created", func(m *Manifest) { m.Expires = m.Created.Add(-time.Second) }, ErrInvalidField},
		{"zero root version", func(m *Manifest) { m.RootVersion = 0 }, ErrInvalidField},
		{"release too large", func(m *Manifest) { m.Size = DefaultLimits.MaxReleaseSize + 1 }, ErrLimitExceeded},
		{"block bytes too large", func(m *Manifest) { m.BlockBytes = DefaultLimits.MaxReleaseSize + 1 }, ErrLimitExceeded},
		{"too many blocks", func(m *Manifest) { m.BlockCount = DefaultLimits.MaxBlockCount + 1 }, ErrLimitExceeded},
		{"no blocks", func(m *Manifest) { m.BlockCount = 0 }, ErrInvalidField},
		{"blocks too big", func(m *Manifest) { m.BlockCount = 1 }, ErrInvalidField},
		{"missing index", func(m *Manifest) { m.Index = cid.Undef }, ErrInvalidField},
		{"CIDv0 index", func(m *Manifest) { m.Index = v0 }, ErrInvalidField},
		{"blake3 block list", func(m *Manifest) { m.Blocks = cid.NewCidV1(cid.Raw, blake) }, ErrInvalidField},
		{"dag-cbor keyring", func(m *Manifest) { m.Keyring.Root = cid.NewCidV1(cid.DagCBOR, m.Keyring.Root.Hash()) }, ErrInvalidField},
		{"dag-cbor index", func(m *Manifest) { m.Index = cid.NewCidV1(cid.DagCBOR, m.Index.Hash()) }, ErrInvalidField},
		{"zero epoch", func(m *Manifest) { m.Keyring.Epoch = 0 }, ErrInvalidField},
		{"short sealed key", func(m *Manifest) { m.SealedReleaseKey = m.SealedReleaseKey[:10] }, ErrInvalidField},
		{"rollout over 100%", func(m *Manifest) { m.RolloutBasisPoints = 10001 }, ErrInvalidField},
		{"rollback without version", func(m *Manifest) { m.Rollback = true }, ErrInvalidField},
		{"rollback version without flag", func(m *Manifest) { m.RollbackTo = m.Version }, ErrInvalidField},
		{"rollback to other version", func(m *Manifest) { m.Rollback, m.RollbackTo = true, "1.3.0" }, ErrInvalidField},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := baseManifest()
			c.mut(m)
			payload, err := EncodeManifest(m, Limits{})
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("EncodeManifest: %v, want %v", err, c.want)
			}
			if c.want != nil {
				// The decoder applies the same rule to bytes that bypassed
				// the encoder's check.
				raw, err := codec.Marshal(m)
				if err != nil {
					return // not even encodable (undefined CID)
				}
				want := c.want
				if c.name == "missing index" {
					want = ErrMalformed // an undefined CID encodes as empty bytes, which no decoder accepts
				}
				if _, err := decodeManifestPayload(raw, DefaultLimits); !errors.Is(err, want) {
					t.Fatalf("decode: %v, want %v", err, want)
				}
				return
			}
			back, err := decodeManifestPayload(payload, DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := codec.Marshal(back)
			if !bytes.Equal(again, payload) {
				t.Fatal("manifest does not round-trip")
			}
		})
	}
}

func TestManifestRejectsNonCanonicalFlags(t *testing.T) {
	// An explicit "rollback: false" is not the canonical encoding (the
	// field is omitted when false), so it must be refused, not normalised.
	m := baseManifest()
	payload, err := EncodeManifest(m, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	type withFalse struct {
		Manifest
		Rollback bool `cbor:"16,keyasint"`
	}
	raw, err := codec.Marshal(&withFalse{Manifest: *m})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(raw, payload) {
		t.Fatal("test did not produce a different encoding")
	}
	if _, err := decodeManifestPayload(raw, DefaultLimits); !errors.Is(err, ErrMalformed) {
		t.Fatalf("decode = %v, want ErrMalformed", err)
	}
}

func TestReleaseKeySealing(t *testing.T) {
	epochKey, releaseKey := fixedKey(1), fixedKey(100)
	m := baseManifest()
	SealReleaseKey(m, &epochKey, &releaseKey)
	got, err := OpenReleaseKey(m, &epochKey)
	if err != nil || got != releaseKey {
		t.Fatalf("OpenReleaseKey = %x, %v", got, err)
	}
	// The sealed key is bound to channel, epoch, sequence and index.
	muts := map[string]func(*Manifest){
		"channel":  func(m *Manifest) { m.Channel = "edge" },
		"epoch":    func(m *Manifest) { m.Keyring.Epoch++ },
		"sequence": func(m *Manifest) { m.Sequence++ },
		"index":    func(m *Manifest) { m.Index = RawCID([]byte("other")) },
	}
	for name, mut := range muts {
		c := *m
		mut(&c)
		if _, err := OpenReleaseKey(&c, &epochKey); !errors.Is(err, crypto.ErrDecrypt) {
			t.Errorf("moved to another %s: %v, want crypto.ErrDecrypt", name, err)
		}
	}
	wrong := fixedKey(2)
	if _, err := OpenReleaseKey(m, &wrong); !errors.Is(err, crypto.ErrDecrypt) {
		t.Errorf("wrong epoch key: %v", err)
	}
}

func TestFreshnessRules(t *testing.T) {
	m := baseManifest()
	payload, _ := EncodeManifest(m, Limits{})
	dm, err := decodeManifestPayload(payload, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	other := dm.digest
	other[0] ^= 1
	cases := []struct {
		name string
		mark ChannelMark
		have bool
		mut  func(*Manifest)
		want error
	}{
		{"first manifest", ChannelMark{}, false, nil, nil},
		{"higher sequence", ChannelMark{Sequence: 6, Version: "1.3.9"}, true, nil, nil},
		{"lower sequence", ChannelMark{Sequence: 8, Version: "1.3.9"}, true, nil, ErrStaleSequence},
		{"same sequence same content", ChannelMark{Sequence: 7, Digest: dm.digest, Version: "1.4.0"}, true, nil, ErrDuplicate},
		{"same sequence other content", ChannelMark{Sequence: 7, Digest: other, Version: "1.4.0"}, true, nil, ErrEquivocation},
		{"downgrade without flag", ChannelMark{Sequence: 6, Version: "1.5.0"}, true, nil, ErrDowngrade},
		{"downgrade with rollback flag", ChannelMark{Sequence: 6, Version: "1.5.0"}, true, func(m *Manifest) { m.Rollback, m.RollbackTo = true, m.Version }, nil},
		{"rollback flag cannot beat sequence", ChannelMark{Sequence: 9, Version: "1.5.0"}, true, func(m *Manifest) { m.Rollback, m.RollbackTo = true, m.Version }, ErrStaleSequence},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := *dm
			if c.mut != nil {
				c.mut(&x)
			}
			err := checkFreshness(c.mark, c.have, &x)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("checkFreshness = %v, want %v", err, c.want)
			}
			if c.want == ErrStaleSequence && errors.Is(err, ErrEquivocation) {
				t.Fatal("stale reported as equivocation")
			}
		})
	}
	var eq *EquivocationError
	if err := checkFreshness(ChannelMark{Sequence: 7, Digest: other}, true, dm); !errors.As(err, &eq) || eq.Received != dm.digest || eq.Accepted != other {
		t.Fatalf("equivocation evidence missing: %v", err)
	}
}

func TestManifestTimeRules(t *testing.T) {
	l := DefaultLimits
	cases := []struct {
		name string
		now  time.Time
		mut  func(*Manifest)
		want error
	}{
		{"valid", testNow, nil, nil},
		{"expired", testNow.Add(31 * 24 * time.Hour), nil, ErrExpired},
		{"expires exactly now", testNow, func(m *Manifest) { m.Expires = testNow }, ErrExpired},
		{"expiry too far", testNow, func(m *Manifest) { m.Expires = testNow.Add(l.MaxExpiry + time.Second) }, ErrExpiryTooFar},
		{"expiry at the bound", testNow, func(m *Manifest) { m.Expires = testNow.Add(l.MaxExpiry) }, nil},
		{"created in the future", testNow, func(m *Manifest) { m.Created = testNow.Add(l.MaxClockSkew + time.Second) }, ErrNotYetValid},
		{"created within skew", testNow, func(m *Manifest) { m.Created = testNow.Add(l.MaxClockSkew) }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := baseManifest()
			if c.mut != nil {
				c.mut(m)
			}
			err := checkManifestTime(m, c.now, l)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("checkManifestTime = %v, want %v", err, c.want)
			}
		})
	}
}
