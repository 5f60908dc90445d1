package protocol

import (
	"fmt"

	"github.com/meshota/meshota/crypto"
)

// VerifyRootChain checks a node's stored chain of signed trust roots: the
// first is the root it was provisioned with and must be signed by a
// threshold of its own root role; each next one must be its predecessor's
// successor (crypto.UpdateRoot). Expiry is not checked here: a node whose
// newest root expired must still start, to refuse new releases
// (ValidateManifest) and fetch the next root. It returns the newest root.
func VerifyRootChain(chain [][]byte, l Limits) (*crypto.Root, error) {
	l = l.withDefaults()
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: no trusted root", ErrRootUpdate)
	}
	var root *crypto.Root
	for i, b := range chain {
		env, err := crypto.ParseEnvelope(b, l.MaxRootBytes)
		if err != nil {
			return nil, fmt.Errorf("%w: root %d of the chain: %w", ErrRootUpdate, i, err)
		}
		if i == 0 {
			root, err = crypto.ParseRoot(env)
			if err == nil {
				err = crypto.VerifyThreshold(env, crypto.RootPayloadType, root.Keys, root.Roles[crypto.RoleRoot])
			}
		} else {
			root, err = crypto.UpdateRoot(root, env)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: root %d of the chain: %w", ErrRootUpdate, i, err)
		}
	}
	return root, nil
}

// RootVersion returns the version of a signed trust root, or 0 if it does
// not parse.
func RootVersion(signed []byte, l Limits) uint64 {
	l = l.withDefaults()
	env, err := crypto.ParseEnvelope(signed, l.MaxRootBytes)
	if err != nil {
		return 0
	}
	r, err := crypto.ParseRoot(env)
	if err != nil {
		return 0
	}
	return r.Version
}

// RootsAfter returns the signed roots of chain with versions above v, in
// order: what a catch-up answer carries.
func RootsAfter(chain [][]byte, v uint64, l Limits) [][]byte {
	var out [][]byte
	for _, b := range chain {
		if RootVersion(b, l) > v {
			out = append(out, b)
		}
	}
	return out
}
