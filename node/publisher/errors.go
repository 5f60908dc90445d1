package publisher

import "errors"

var (
	// ErrExists means Init found an existing publisher directory.
	ErrExists = errors.New("publisher directory already exists; refusing to overwrite it")
	// ErrNotPublisher means the directory is not a publisher directory.
	ErrNotPublisher = errors.New("not a publisher directory (create one with meshota init)")
	// ErrNoRelease means the channel has no release yet.
	ErrNoRelease = errors.New("channel has no release yet; publish one first")
	// ErrVersionNotNewer means a published version is not above the
	// channel's current one (use rollback to return to an older version).
	ErrVersionNotNewer = errors.New("version is not newer than the channel's current version")
	// ErrNarrowerRollout means a rollout would shrink; rollouts only widen.
	ErrNarrowerRollout = errors.New("rollout can only widen")
	// ErrUnknownVersion means rollback named a version never published.
	ErrUnknownVersion = errors.New("no release of that version in this channel")
	// ErrUnknownDevice means revoke named a device not enrolled.
	ErrUnknownDevice = errors.New("device is not enrolled in this channel")
)
