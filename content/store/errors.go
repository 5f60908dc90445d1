package store

import "errors"

// ErrPins reports an unreadable pin file; restore it from a backup or
// remove it and re-pin the releases to keep.
var ErrPins = errors.New("pin file unreadable")

// ErrNotPinned reports that a release to unpin was not pinned.
var ErrNotPinned = errors.New("release not pinned")
