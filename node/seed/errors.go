package seed

import "errors"

var (
	// ErrNoRoot means the seed has no trust root: start it with the
	// publisher's root file (meshota seed --root).
	ErrNoRoot = errors.New("seed: no trusted root")
	// ErrUnauthorized is the admin API's answer to a missing or wrong token.
	ErrUnauthorized = errors.New("seed: admin token missing or wrong")
)
