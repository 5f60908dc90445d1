package protocol

import (
	"bytes"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/protocol/codec"
)

// KeyringState is the publisher's record of one channel's keyring: the
// current epoch and its key, every epoch key used so far (to re-seal old
// releases for a rollback), and the enrolled devices with their sealed
// current epoch key. It holds secrets: store it like a private key.
type KeyringState struct {
	Channel   string                `cbor:"1,keyasint"`
	Epoch     uint64                `cbor:"2,keyasint"`
	EpochKeys []crypto.SymmetricKey `cbor:"3,keyasint"` // EpochKeys[e-1] is epoch e's key
	Devices   []KeyringDevice       `cbor:"4,keyasint"` // strictly ascending by ID
}

// KeyringDevice is one enrolled device as the publisher keeps it.
type KeyringDevice struct {
	Device    DeviceID `cbor:"1,keyasint"`
	DeviceKey []byte   `cbor:"2,keyasint"` // the HPKE public key, as in the enrollment
	Sealed    []byte   `cbor:"3,keyasint"` // current epoch key sealed to DeviceKey
}

// NewKeyringState starts channel's keyring at epoch 1 with a fresh key and
// no device.
func NewKeyringState(channel string) (*KeyringState, error) {
	if err := ValidateChannel(channel); err != nil {
		return nil, err
	}
	return &KeyringState{Channel: channel, Epoch: 1, EpochKeys: []crypto.SymmetricKey{crypto.NewSymmetricKey()}}, nil
}

// EpochKey returns the key of epoch e (any epoch so far).
func (s *KeyringState) EpochKey(e uint64) (crypto.SymmetricKey, bool) {
	if e == 0 || e > uint64(len(s.EpochKeys)) {
		return crypto.SymmetricKey{}, false
	}
	return s.EpochKeys[e-1], true
}

func (s *KeyringState) current() *crypto.SymmetricKey { return &s.EpochKeys[s.Epoch-1] }

func (s *KeyringState) find(id DeviceID) (int, bool) {
	return slices.BinarySearchFunc(s.Devices, id, func(d KeyringDevice, id DeviceID) int {
		return bytes.Compare(d.Device[:], id[:])
	})
}

// Enroll adds a device (from a verified Enrollment) to the current epoch:
// only its own entry is sealed; no other entry changes. Enrolling a device
// already enrolled with the same key does nothing.
func (s *KeyringState) Enroll(e *Enrollment) error {
	i, ok := s.find(e.Device)
	if ok {
		if bytes.Equal(s.Devices[i].DeviceKey, e.DeviceKey) {
			return nil
		}
		return fmt.Errorf("%w: %s is already enrolled with another device key; revoke it first", ErrInvalidField, e.Device)
	}
	d := KeyringDevice{Device: e.Device, DeviceKey: e.DeviceKey}
	if err := s.seal(&d); err != nil {
		return err
	}
	s.Devices = slices.Insert(s.Devices, i, d)
	return nil
}

// Revoke removes a device and starts a new epoch with a fresh key sealed to
// every remaining device: the revoked device can open nothing published
// from now on.
func (s *KeyringState) Revoke(ids ...DeviceID) error {
	for _, id := range ids {
		if _, ok := s.find(id); !ok {
			return fmt.Errorf("%w: %s is not enrolled in %q", ErrNotInKeyring, id, s.Channel)
		}
	}
	for _, id := range ids {
		if i, ok := s.find(id); ok {
			s.Devices = slices.Delete(s.Devices, i, i+1)
		}
	}
	return s.Rekey()
}

// Rekey starts a new epoch with a fresh key and re-seals it to every
// enrolled device, spreading the work over the available cores.
func (s *KeyringState) Rekey() error {
	s.EpochKeys = append(s.EpochKeys, crypto.NewSymmetricKey())
	s.Epoch++
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(s.Devices); i += workers {
				if err := s.seal(&s.Devices[i]); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Build returns the keyring blocks of the current epoch (root, then every
// shard) and the reference a manifest carries.
func (s *KeyringState) Build(l Limits) (root Block, shards []Block, ref KeyringRef, err error) {
	l = l.withDefaults()
	entries := make([]KeyringEntry, len(s.Devices))
	for i, d := range s.Devices {
		entries[i] = KeyringEntry{Device: d.Device, Sealed: d.Sealed}
	}
	root, shards, err = buildKeyringBlocks(s.Channel, s.Epoch, entries, l)
	if err != nil {
		return Block{}, nil, KeyringRef{}, err
	}
	return root, shards, KeyringRef{Root: root.CID, Epoch: s.Epoch}, nil
}

// MarshalKeyringState encodes s for storage (it contains secret keys).
func MarshalKeyringState(s *KeyringState) ([]byte, error) { return codec.Marshal(s) }

// ParseKeyringState decodes what MarshalKeyringState wrote.
func ParseKeyringState(data []byte) (*KeyringState, error) {
	var s KeyringState
	if err := codec.Unmarshal(data, &s, codec.Limits{MaxBytes: 1 << 30, MaxElements: 1 << 24}); err != nil {
		return nil, fmt.Errorf("%w: keyring state: %v", ErrMalformed, err)
	}
	if err := ValidateChannel(s.Channel); err != nil {
		return nil, err
	}
	if s.Epoch == 0 || s.Epoch != uint64(len(s.EpochKeys)) {
		return nil, fmt.Errorf("%w: keyring state at epoch %d with %d epoch keys", ErrInvalidField, s.Epoch, len(s.EpochKeys))
	}
	for i := 1; i < len(s.Devices); i++ {
		if bytes.Compare(s.Devices[i-1].Device[:], s.Devices[i].Device[:]) >= 0 {
			return nil, fmt.Errorf("%w: keyring state devices not sorted", ErrInvalidField)
		}
	}
	return &s, nil
}
