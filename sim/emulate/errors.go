package emulate

import "errors"

// ErrSpec reports a Spec that cannot be emulated.
var ErrSpec = errors.New("emulate: bad spec")
