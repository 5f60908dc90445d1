package agent

import "errors"

var (
	// ErrNoRoot means the state directory holds no trusted root: copy the
	// publisher's root.json next to the device keys (meshota device init
	// --root) before starting the agent.
	ErrNoRoot = errors.New("agent: no trusted root")
	// ErrNoSpace means the store's filesystem cannot hold the blocks a
	// release still needs; the agent retries once space is freed.
	ErrNoSpace = errors.New("agent: not enough disk space for the release")
	// ErrConfig reports a missing or inconsistent configuration field.
	ErrConfig = errors.New("agent: invalid configuration")
)
