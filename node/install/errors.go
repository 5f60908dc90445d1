package install

import "errors"

var (
	// ErrInstallHook means the install hook failed; the running release was
	// not changed.
	ErrInstallHook = errors.New("install hook failed")
	// ErrHealthCheck means the new release was activated but failed its
	// health check, and the previous release was put back.
	ErrHealthCheck = errors.New("health check failed")
	// ErrNoPrevious means there is no previous release to return to.
	ErrNoPrevious = errors.New("no previous release to roll back to")
	// ErrBadName means a release name would escape the install directory.
	ErrBadName = errors.New("invalid release name")
)
