package protocol

import (
	"errors"
	"testing"
	"time"

	"github.com/meshota/meshota/crypto"
)

type testDevice struct {
	sk  *crypto.SigningKey
	dk  *crypto.DeviceKey
	enr *Enrollment
}

func newTestDevice(t testing.TB, kem crypto.KEM) *testDevice {
	t.Helper()
	d := &testDevice{sk: newSigningKey(t), dk: newDeviceKey(t, kem)}
	text, err := NewEnrollment(d.sk, d.dk, "", testNow)
	if err != nil {
		t.Fatal(err)
	}
	if d.enr, err = ParseEnrollmentText(text, Limits{}); err != nil {
		t.Fatal(err)
	}
	return d
}

// openFor runs the device side: root, own shard, epoch key, release key.
func openFor(t *testing.T, d *testDevice, m *Manifest, root Block, shards []Block) (crypto.SymmetricKey, error) {
	t.Helper()
	r, err := ParseKeyringRoot(root.Data, m, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	i, c := r.ShardFor(d.enr.Device)
	if !c.Equals(shards[i].CID) {
		t.Fatalf("shard %d CID mismatch", i)
	}
	s, err := ParseKeyringShard(shards[i].Data, r, i, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ek, err := OpenEpochKey(d.dk, d.enr.Device, s)
	if err != nil {
		return crypto.SymmetricKey{}, err
	}
	return OpenReleaseKey(m, &ek)
}

func publish(t *testing.T, ks *KeyringState, seq uint64) (*Manifest, crypto.SymmetricKey, Block, []Block) {
	t.Helper()
	root, shards, ref, err := ks.Build(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m := withSeq(baseManifest(), seq)
	m.Keyring = ref
	rk := crypto.NewSymmetricKey()
	ek, _ := ks.EpochKey(ref.Epoch)
	SealReleaseKey(m, &ek, &rk)
	return m, rk, root, shards
}

func TestKeyringEpochKeyOnlyForEnrolled(t *testing.T) {
	ks, err := NewKeyringState("stable")
	if err != nil {
		t.Fatal(err)
	}
	a, b, stranger := newTestDevice(t, crypto.KEMX25519), newTestDevice(t, crypto.KEMX25519), newTestDevice(t, crypto.KEMX25519)
	for _, d := range []*testDevice{a, b} {
		if err := ks.Enroll(d.enr); err != nil {
			t.Fatal(err)
		}
	}
	m, rk, root, shards := publish(t, ks, 7)
	for _, d := range []*testDevice{a, b} {
		got, err := openFor(t, d, m, root, shards)
		if err != nil || got != rk {
			t.Fatalf("enrolled device: %v", err)
		}
	}
	if _, err := openFor(t, stranger, m, root, shards); !errors.Is(err, ErrNotInKeyring) {
		t.Fatalf("stranger: %v, want ErrNotInKeyring", err)
	}
	// A device cannot use another device's entry with its own key.
	r, _ := ParseKeyringRoot(root.Data, m, Limits{})
	i, _ := r.ShardFor(a.enr.Device)
	s, _ := ParseKeyringShard(shards[i].Data, r, i, Limits{})
	sealed, _ := s.Find(a.enr.Device)
	s.Entries = []KeyringEntry{{Device: stranger.enr.Device, Sealed: sealed}}
	if _, err := OpenEpochKey(stranger.dk, stranger.enr.Device, s); !errors.Is(err, crypto.ErrDecrypt) {
		t.Fatalf("stolen entry opened: %v", err)
	}
}

func TestRevokeStartsNewEpoch(t *testing.T) {
	ks, _ := NewKeyringState("stable")
	a, b := newTestDevice(t, crypto.KEMX25519), newTestDevice(t, crypto.KEMX25519)
	ks.Enroll(a.enr)
	ks.Enroll(b.enr)
	m1, _, root1, shards1 := publish(t, ks, 7)
	if _, err := openFor(t, b, m1, root1, shards1); err != nil {
		t.Fatal(err)
	}
	if err := ks.Revoke(b.enr.Device); err != nil {
		t.Fatal(err)
	}
	if ks.Epoch != 2 {
		t.Fatalf("epoch %d after revoke", ks.Epoch)
	}
	m2, rk2, root2, shards2 := publish(t, ks, 8)
	if m2.Keyring.Epoch != 2 {
		t.Fatalf("manifest names epoch %d", m2.Keyring.Epoch)
	}
	if got, err := openFor(t, a, m2, root2, shards2); err != nil || got != rk2 {
		t.Fatalf("remaining device: %v", err)
	}
	if _, err := openFor(t, b, m2, root2, shards2); !errors.Is(err, ErrNotInKeyring) {
		t.Fatalf("revoked device: %v, want ErrNotInKeyring", err)
	}
	// The revoked device's old epoch key does not open the new release key.
	r1, _ := ParseKeyringRoot(root1.Data, m1, Limits{})
	i, _ := r1.ShardFor(b.enr.Device)
	s1, _ := ParseKeyringShard(shards1[i].Data, r1, i, Limits{})
	oldKey, err := OpenEpochKey(b.dk, b.enr.Device, s1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReleaseKey(m2, &oldKey); !errors.Is(err, crypto.ErrDecrypt) {
		t.Fatalf("old epoch key opened the new release: %v", err)
	}
	if err := ks.Revoke(b.enr.Device); !errors.Is(err, ErrNotInKeyring) {
		t.Fatalf("double revoke: %v", err)
	}
}

func TestEnrollKeepsOtherEntries(t *testing.T) {
	ks, _ := NewKeyringState("stable")
	devs := make([]*testDevice, 5)
	for i := range devs {
		devs[i] = newTestDevice(t, crypto.KEMX25519)
		ks.Enroll(devs[i].enr)
	}
	before := map[DeviceID]string{}
	for _, d := range ks.Devices {
		before[d.Device] = string(d.Sealed)
	}
	extra := newTestDevice(t, crypto.KEMX25519)
	if err := ks.Enroll(extra.enr); err != nil {
		t.Fatal(err)
	}
	if ks.Epoch != 1 || len(ks.Devices) != 6 {
		t.Fatalf("epoch %d, %d devices", ks.Epoch, len(ks.Devices))
	}
	for _, d := range ks.Devices {
		if old, ok := before[d.Device]; ok && old != string(d.Sealed) {
			t.Fatal("enrolling one device re-sealed another's entry")
		}
	}
	if err := ks.Enroll(extra.enr); err != nil {
		t.Fatalf("re-enrolling the same record: %v", err)
	}
	other := *extra.enr
	other.DeviceKey = devs[0].enr.DeviceKey
	if err := ks.Enroll(&other); !errors.Is(err, ErrInvalidField) {
		t.Fatalf("key swap accepted: %v", err)
	}
	data, err := MarshalKeyringState(ks)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseKeyringState(data)
	if err != nil || back.Epoch != 1 || len(back.Devices) != 6 || back.EpochKeys[0] != ks.EpochKeys[0] {
		t.Fatalf("state round trip: %v", err)
	}
}

// scaleKeyring enrolls n synthetic devices. Device IDs are distinct and
// uniformly spread; HPKE public keys are drawn from a pool of real device
// keys (generating 100,000 key pairs is the devices' cost, not the
// publisher's). Every entry is still sealed separately, which is the cost
// being measured.
func scaleKeyring(t testing.TB, n int, kem crypto.KEM) (*KeyringState, []*testDevice, []DeviceID) {
	pool := make([]*testDevice, 16)
	for i := range pool {
		pool[i] = newTestDevice(t, kem)
	}
	ks, _ := NewKeyringState("stable")
	ids := fakeIDs(n)
	ks.Devices = make([]KeyringDevice, n)
	for i, id := range ids {
		ks.Devices[i] = KeyringDevice{Device: id, DeviceKey: pool[i%len(pool)].enr.DeviceKey}
	}
	return ks, pool, ids
}

func TestKeyring100kDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const n = 100_000
	// X25519: the hybrid ML-KEM-768 build is BenchmarkKeyringBuild (see
	// docs/PROTOCOL.md); under -race its encapsulations take minutes.
	ks, pool, ids := scaleKeyring(t, n, crypto.KEMX25519)
	start := time.Now()
	if err := ks.Rekey(); err != nil {
		t.Fatal(err)
	}
	root, shards, ref, err := ks.Build(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	total, largest := 0, 0
	for _, s := range shards {
		total += len(s.Data)
		largest = max(largest, len(s.Data))
	}
	t.Logf("100,000-device keyring (X25519): built in %v on %d shards; root %d bytes, largest shard %d bytes, all shards %d bytes; a device downloads %d bytes (%.3f%% of the keyring)",
		elapsed.Round(time.Millisecond), len(shards), len(root.Data), largest, total, len(root.Data)+largest, 100*float64(len(root.Data)+largest)/float64(total+len(root.Data)))
	if len(root.Data)+largest > 256<<10 {
		t.Fatalf("a device must download %d bytes", len(root.Data)+largest)
	}
	// Spot-check devices of the pool: their entries open.
	m := &Manifest{Channel: "stable", Keyring: ref}
	r, err := ParseKeyringRoot(root.Data, m, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ks.EpochKey(ref.Epoch)
	for k := range 4 {
		i := k * 7919 % n
		d := pool[i%len(pool)]
		si, _ := r.ShardFor(ids[i])
		s, err := ParseKeyringShard(shards[si].Data, r, si, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := OpenEpochKey(d.dk, ids[i], s)
		if err != nil || got != want {
			t.Fatalf("device %d: %v", i, err)
		}
	}
}

func BenchmarkKeyringBuild(b *testing.B) {
	for _, c := range []struct {
		name string
		kem  crypto.KEM
		n    int
	}{{"x25519/100k", crypto.KEMX25519, 100_000}, {"mlkem768x25519/100k", crypto.KEMMLKEM768X25519, 100_000}} {
		b.Run(c.name, func(b *testing.B) {
			ks, _, _ := scaleKeyring(b, c.n, c.kem)
			var root Block
			var shards []Block
			for b.Loop() {
				if err := ks.Rekey(); err != nil {
					b.Fatal(err)
				}
				var err error
				if root, shards, _, err = ks.Build(Limits{}); err != nil {
					b.Fatal(err)
				}
			}
			total, largest := len(root.Data), 0
			for _, s := range shards {
				total += len(s.Data)
				largest = max(largest, len(s.Data))
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(c.n), "µs/device")
			b.ReportMetric(float64(len(root.Data)), "root-bytes")
			b.ReportMetric(float64(largest), "largest-shard-bytes")
			// Baseline: an unsharded keyring every device would download whole.
			b.ReportMetric(float64(total)/float64(len(root.Data)+largest), "x-less-than-unsharded")
		})
	}
}
