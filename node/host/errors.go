package host

import "errors"

// ErrKeyFilePermissions means the identity key file is readable or
// writable by group or others.
var ErrKeyFilePermissions = errors.New("identity key file is accessible by group or others")
