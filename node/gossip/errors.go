package gossip

import "errors"

// ErrClosed is returned by operations on a topic or service that was closed.
var ErrClosed = errors.New("gossip: closed")
