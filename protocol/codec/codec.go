package codec

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// ErrMalformed is wrapped by every decoding failure: the bytes are not a
// well-formed, canonical, bounded encoding of the expected document.
var ErrMalformed = errors.New("malformed document")

// ErrTooLarge reports an input longer than the caller's limit, checked before
// any parsing so that an oversized message costs nothing to refuse.
var ErrTooLarge = errors.New("document too large")

// Limits bound what decoding one document may allocate.
type Limits struct {
	MaxBytes    int // input length; 0 means DefaultLimits.MaxBytes
	MaxElements int // elements of any one array and pairs of any one map; 0 means default
}

// DefaultLimits fit every control-plane document (manifests, roots,
// reports). Documents that legitimately carry long lists (index pages,
// keyring shards) pass their own.
var DefaultLimits = Limits{MaxBytes: 64 << 10, MaxElements: 1024}

var encMode cbor.EncMode

func init() {
	opts := cbor.CoreDetEncOptions()
	opts.Time = cbor.TimeUnix
	var err error
	if encMode, err = opts.EncMode(); err != nil {
		panic(err)
	}
}

func decMode(l Limits) (cbor.DecMode, error) {
	n := l.MaxElements
	if n == 0 {
		n = DefaultLimits.MaxElements
	}
	n = max(n, 16) // the library's floor
	return cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   16,
		MaxArrayElements:  n,
		MaxMapPairs:       n,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
}

// Marshal encodes v deterministically: equal values give equal bytes.
func Marshal(v any) ([]byte, error) {
	return encMode.Marshal(v)
}

// Unmarshal decodes data into v under l and refuses anything that is not
// the canonical encoding of the result: unknown fields, duplicate keys,
// indefinite lengths, tags, trailing bytes, or non-deterministic forms. Two
// accepted documents with equal content therefore have equal bytes, which is
// what lets a node detect equivocation by comparing bytes.
func Unmarshal(data []byte, v any, l Limits) error {
	maxBytes := l.MaxBytes
	if maxBytes == 0 {
		maxBytes = DefaultLimits.MaxBytes
	}
	if len(data) > maxBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), maxBytes)
	}
	dm, err := decMode(l)
	if err != nil {
		return err
	}
	if err := dm.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	again, err := encMode.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !bytes.Equal(again, data) {
		return fmt.Errorf("%w: not in canonical (deterministic) form", ErrMalformed)
	}
	return nil
}
