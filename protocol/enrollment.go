package protocol

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/protocol/codec"
)

// Enrollment is what a device hands its publisher to be enrolled: its ID,
// its status-signing public key and its HPKE public key, self-signed by the
// signing key. `meshota device init` prints it (EncodeEnrollmentText);
// `meshota fleet add` reads it (ParseEnrollmentText).
type Enrollment struct {
	Device     DeviceID  `cbor:"1,keyasint"`
	SigningKey []byte    `cbor:"2,keyasint"`
	DeviceKey  []byte    `cbor:"3,keyasint"`
	Created    time.Time `cbor:"4,keyasint"`
	Name       string    `cbor:"5,keyasint,omitempty"`
}

// EnrollmentTextPrefix starts the text form of an enrollment record.
const EnrollmentTextPrefix = "meshota-enrollment-v1:"

// MaxNameLen bounds an enrollment's optional label.
const MaxNameLen = 64

var b64 = base64.RawURLEncoding

// NewEnrollment builds and signs the enrollment record of a device and
// returns its text form.
func NewEnrollment(sk *crypto.SigningKey, dk *crypto.DeviceKey, name string, now time.Time) (string, error) {
	e := Enrollment{
		Device:     DeviceIDOf(sk.Public()),
		SigningKey: sk.Public().Bytes(),
		DeviceKey:  dk.Public().Bytes(),
		Created:    now.Truncate(time.Second).UTC(),
		Name:       name,
	}
	if err := e.check(DefaultLimits); err != nil {
		return "", err
	}
	payload, err := codec.Marshal(&e)
	if err != nil {
		return "", err
	}
	env, err := signPayload(EnrollmentPayloadType, payload, sk)
	if err != nil {
		return "", err
	}
	return EnrollmentTextPrefix + b64.EncodeToString(env), nil
}

func (e *Enrollment) check(l Limits) error {
	if len(e.Name) > MaxNameLen {
		return fmt.Errorf("%w: device name of %d bytes, limit %d", ErrLimitExceeded, len(e.Name), MaxNameLen)
	}
	if e.Created.IsZero() {
		return fmt.Errorf("%w: enrollment without a creation time", ErrInvalidField)
	}
	return nil
}

// ParseEnrollmentText decodes and verifies the text form of an enrollment
// record (whitespace inside it is ignored): the signature must be by the
// record's own signing key, the device ID must derive from that key and the
// HPKE key must parse.
func ParseEnrollmentText(text string, l Limits) (*Enrollment, error) {
	l = l.withDefaults()
	text = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, text)
	body, ok := strings.CutPrefix(text, EnrollmentTextPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: an enrollment record starts with %q; copy the whole line printed by meshota device init", ErrMalformed, EnrollmentTextPrefix)
	}
	if b64.DecodedLen(len(body)) > l.MaxEnrollmentBytes {
		return nil, fmt.Errorf("%w: enrollment record of %d characters", ErrTooLarge, len(body))
	}
	data, err := b64.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: enrollment record is not base64url: %v", ErrMalformed, err)
	}
	return ParseEnrollment(data, l)
}

// ParseEnrollment verifies the binary (envelope) form of an enrollment.
func ParseEnrollment(data []byte, l Limits) (*Enrollment, error) {
	l = l.withDefaults()
	env, err := openEnvelope(data, l.MaxEnrollmentBytes, EnrollmentPayloadType)
	if err != nil {
		return nil, err
	}
	var e Enrollment
	if err := codec.Unmarshal(env.Payload, &e, codec.Limits{MaxBytes: l.MaxEnrollmentBytes, MaxElements: 16}); err != nil {
		return nil, fmt.Errorf("%w: enrollment: %v", ErrMalformed, err)
	}
	if err := e.check(l); err != nil {
		return nil, err
	}
	pub, err := parseSigningPublic(e.SigningKey)
	if err != nil {
		return nil, err
	}
	if DeviceIDOf(pub) != e.Device {
		return nil, fmt.Errorf("%w: enrollment names %s but its key gives %s", ErrDeviceMismatch, e.Device, DeviceIDOf(pub))
	}
	if _, err := parseDevicePublic(e.DeviceKey); err != nil {
		return nil, err
	}
	if err := verifySingle(env, pub); err != nil {
		return nil, err
	}
	return &e, nil
}

// PublicKey returns the device's status-signing key (for the enrolled set
// that ValidateStatusReport takes).
func (e *Enrollment) PublicKey() (crypto.PublicKey, error) { return parseSigningPublic(e.SigningKey) }
