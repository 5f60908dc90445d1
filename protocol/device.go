package protocol

import (
	"encoding/base32"
	"fmt"
	"strings"
)

// DeviceID identifies a device: 16 bytes derived from its status-signing
// public key (see DeviceIDOf). Its printable form is "dev-" followed by 26
// lower-case base32 characters (RFC 4648 alphabet, no padding).
type DeviceID [16]byte

const deviceIDPrefix = "dev-"

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// String returns the printable form, e.g. "dev-ab2c...".
func (id DeviceID) String() string {
	return deviceIDPrefix + strings.ToLower(b32.EncodeToString(id[:]))
}

// MarshalText implements encoding.TextMarshaler.
func (id DeviceID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *DeviceID) UnmarshalText(b []byte) error {
	p, err := ParseDeviceID(string(b))
	if err != nil {
		return err
	}
	*id = p
	return nil
}

// ParseDeviceID parses the printable form (only the canonical form).
func ParseDeviceID(s string) (DeviceID, error) {
	var id DeviceID
	rest, ok := strings.CutPrefix(s, deviceIDPrefix)
	if !ok || len(rest) != 26 || strings.ToLower(rest) != rest {
		return id, fmt.Errorf("%w: device ID %q: want %q and 26 lower-case base32 characters", ErrInvalidField, s, deviceIDPrefix)
	}
	b, err := b32.DecodeString(strings.ToUpper(rest))
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("%w: device ID %q is not valid base32", ErrInvalidField, s)
	}
	copy(id[:], b)
	if id.String() != s {
		return id, fmt.Errorf("%w: device ID %q is not in canonical form", ErrInvalidField, s)
	}
	return id, nil
}
