package protocol

import (
	"fmt"

	"github.com/meshota/meshota/crypto"
)

func parseSigningPublic(b []byte) (crypto.PublicKey, error) {
	pub, err := crypto.PublicKeyFromBytes(b)
	if err != nil {
		return pub, fmt.Errorf("%w: signing key: %w", ErrInvalidField, err)
	}
	return pub, nil
}

func parseDevicePublic(b []byte) (crypto.DevicePublicKey, error) {
	pub, err := crypto.ParseDevicePublicKey(b)
	if err != nil {
		return pub, fmt.Errorf("%w: device key: %w", ErrInvalidField, err)
	}
	return pub, nil
}

// seal seals the current epoch key to d.
func (s *KeyringState) seal(d *KeyringDevice) error {
	pub, err := parseDevicePublic(d.DeviceKey)
	if err != nil {
		return err
	}
	sealed, err := crypto.SealKey(pub, s.Channel, s.Epoch, s.current())
	if err != nil {
		return fmt.Errorf("sealing the epoch key to %s: %w", d.Device, err)
	}
	d.Sealed = sealed
	return nil
}

// OpenEpochKey opens a device's entry of a verified keyring shard with its
// HPKE private key.
func OpenEpochKey(dk *crypto.DeviceKey, id DeviceID, s *KeyringShard) (crypto.SymmetricKey, error) {
	sealed, err := s.Find(id)
	if err != nil {
		return crypto.SymmetricKey{}, err
	}
	k, err := dk.OpenKey(s.Channel, s.Epoch, sealed)
	if err != nil {
		return crypto.SymmetricKey{}, fmt.Errorf("epoch %d key of %s: %w", s.Epoch, id, err)
	}
	return k, nil
}
