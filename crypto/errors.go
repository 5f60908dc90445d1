package crypto

import "errors"

// ErrDecrypt means authenticated decryption failed: the key, the context
// (channel, epoch, AAD) or the ciphertext is wrong. It never says which, on
// purpose.
var ErrDecrypt = errors.New("decryption failed")

// Key material and key files.
var (
	// ErrMalformedKey: bytes or text that are not a key of the expected kind.
	ErrMalformedKey = errors.New("malformed key (check that the whole key was copied, prefix included)")
	// ErrKeyFilePermissions: a secret key file is readable or writable by
	// group or others. The wrapping error names the file and the chmod fix.
	ErrKeyFilePermissions = errors.New("key file permissions too open")
	// ErrKeyFileExists: a key file would be overwritten. Move the old key
	// away first if replacing it is really intended.
	ErrKeyFileExists = errors.New("key file already exists (refusing to overwrite a key; move it away first)")
	// ErrUnknownKEM: a KEM identifier this version does not implement.
	ErrUnknownKEM = errors.New("unknown KEM (use x25519 or mlkem768x25519)")
)

// Envelopes and signatures.
var (
	// ErrMalformedEnvelope: bytes that are not a well-formed signature envelope.
	ErrMalformedEnvelope = errors.New("malformed signature envelope")
	// ErrPayloadType: the envelope carries a different kind of document than
	// the caller expects. Its signatures are never counted for another type.
	ErrPayloadType = errors.New("wrong envelope payload type")
	// ErrBadThreshold: a role whose threshold is below 1 or above its number
	// of distinct keys. Such a role never verifies anything.
	ErrBadThreshold = errors.New("role threshold out of range (must be between 1 and the number of the role's keys)")
	// ErrThresholdNotMet: fewer distinct role keys produced a valid
	// signature than the role's threshold requires.
	ErrThresholdNotMet = errors.New("signature threshold not met")
)

// Trust roots.
var (
	// ErrMalformedRoot: a root document that breaks a structure rule (a role
	// names a key the root does not list, a key listed under a wrong ID,...).
	ErrMalformedRoot = errors.New("malformed trust root")
	// ErrRootVersion: a root update whose version is not exactly the trusted
	// version plus one. Fetch and apply the missing roots in order.
	ErrRootVersion = errors.New("trust root version is not the next one (apply the missing roots in order)")
	// ErrRootExpired: the newest trusted root has expired; nothing new is
	// accepted under it until the publisher signs a fresh root.
	ErrRootExpired = errors.New("trust root expired (the publisher must sign a new root)")
)
