package reqresp

import "errors"

var (
	// ErrTooLarge is returned when a frame is longer than the reader's bound.
	ErrTooLarge = errors.New("reqresp: message too large")
	// ErrRemote wraps an error the responder reported instead of an answer.
	ErrRemote = errors.New("reqresp: peer answered with an error")
)
