package protocol

import (
	"errors"
	"fmt"
	"testing"
)

func TestPenalises(t *testing.T) {
	blame := []error{ErrBadSignature, ErrThresholdNotMet, ErrMalformed, ErrTooLarge, ErrWrongChannel, ErrInvalidField}
	spare := []error{ErrDuplicate, ErrStaleSequence, ErrExpired, ErrRootAhead, &EquivocationError{}, ErrUnknownDevice}
	for _, e := range blame {
		if !Penalises(fmt.Errorf("wrapped: %w", e)) {
			t.Errorf("%v does not penalise the sender", e)
		}
	}
	for _, e := range spare {
		if Penalises(fmt.Errorf("wrapped: %w", e)) {
			t.Errorf("%v penalises the sender", e)
		}
	}
	if Penalises(nil) || !Penalises(errors.New("anything else")) {
		t.Error("nil must not penalise; unknown errors must")
	}
}
