package crypto

import (
	"fmt"
	"time"

	"github.com/meshota/meshota/protocol/codec"
)

// Role names every root defines. Roots may define more.
const (
	RoleRoot    = "root"    // signs the next root
	RoleRelease = "release" // signs manifests
)

// RootPayloadType is the envelope payload type of a trust root.
const RootPayloadType = "application/vnd.meshota.root.v1+cbor"

// Root limits.
const (
	MaxRootKeys     = 64
	MaxRoles        = 16
	MaxRoleNameLen  = 64
	MaxRootDocBytes = 64 << 10
)

// Root is the trust root: the keys and roles (sets of keys with a
// threshold) trusted to sign the next root and releases, until Expires.
// Roots are numbered from 1; root N+1 must be signed by a threshold of root
// N's root role and of its own.
type Root struct {
	Version uint64
	Expires time.Time // whole seconds, UTC
	Keys    map[KeyID]PublicKey
	Roles   map[string]Role
}

// rootDoc is the encoded form:
// {1: version uint, 2: expires unix seconds, 3: {KeyID bytes: public key bytes}, 4: {name: {1: [KeyID], 2: threshold}}}.
type rootDoc struct {
	Version uint64              `cbor:"1,keyasint"`
	Expires int64               `cbor:"2,keyasint"`
	Keys    map[KeyID]PublicKey `cbor:"3,keyasint"`
	Roles   map[string]Role     `cbor:"4,keyasint"`
}

// check enforces the structure rules.
func (r *Root) check() error {
	if r == nil {
		return fmt.Errorf("%w: nil root", ErrMalformedRoot)
	}
	if r.Version < 1 {
		return fmt.Errorf("%w: version must be at least 1", ErrMalformedRoot)
	}
	if r.Expires.Unix() <= 0 {
		return fmt.Errorf("%w: no expiry time", ErrMalformedRoot)
	}
	if len(r.Keys) == 0 || len(r.Keys) > MaxRootKeys {
		return fmt.Errorf("%w: %d keys, want 1 to %d", ErrMalformedRoot, len(r.Keys), MaxRootKeys)
	}
	for id, pk := range r.Keys {
		if pk.IsZero() || pk.ID() != id {
			return fmt.Errorf("%w: key listed under ID %s is not that key (its ID is %s)", ErrMalformedRoot, id, pk.ID())
		}
	}
	if len(r.Roles) > MaxRoles {
		return fmt.Errorf("%w: %d roles, limit %d", ErrMalformedRoot, len(r.Roles), MaxRoles)
	}
	for _, name := range []string{RoleRoot, RoleRelease} {
		if _, ok := r.Roles[name]; !ok {
			return fmt.Errorf("%w: no %q role", ErrMalformedRoot, name)
		}
	}
	for name, role := range r.Roles {
		if name == "" || len(name) > MaxRoleNameLen {
			return fmt.Errorf("%w: role name must be 1 to %d bytes", ErrMalformedRoot, MaxRoleNameLen)
		}
		seen := make(map[KeyID]bool, len(role.KeyIDs))
		for _, id := range role.KeyIDs {
			if seen[id] {
				return fmt.Errorf("%w: role %q lists key %s twice", ErrMalformedRoot, name, id)
			}
			seen[id] = true
			if _, ok := r.Keys[id]; !ok {
				return fmt.Errorf("%w: role %q names key %s that the root does not list", ErrMalformedRoot, name, id)
			}
		}
		if role.Threshold < 1 || role.Threshold > len(role.KeyIDs) {
			return fmt.Errorf("%w: role %q: %w (threshold %d, %d keys)", ErrMalformedRoot, name, ErrBadThreshold, role.Threshold, len(role.KeyIDs))
		}
	}
	return nil
}

// MarshalPayload returns the root's encoding, the envelope payload.
func (r *Root) MarshalPayload() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	return codec.Marshal(&rootDoc{Version: r.Version, Expires: r.Expires.Unix(), Keys: r.Keys, Roles: r.Roles})
}

// SignRoot encodes r and signs it with keys. Rotation needs signatures by a
// threshold of both the previous and the new root role; further signers may
// add theirs with Envelope.AddSignature. Expires is truncated to seconds.
func SignRoot(r *Root, keys ...*SigningKey) (*Envelope, error) {
	payload, err := r.MarshalPayload()
	if err != nil {
		return nil, err
	}
	return Sign(RootPayloadType, payload, keys...)
}

// ParseRoot decodes the root in env and checks its structure (every role
// key is listed, IDs match keys, thresholds between 1 and the role's
// keys, root and release roles present). It checks no signature: use
// VerifyInitialRoot, UpdateRoot or WalkRoots for that.
func ParseRoot(env *Envelope) (*Root, error) {
	if env == nil {
		return nil, fmt.Errorf("%w: nil envelope", ErrMalformedRoot)
	}
	if env.PayloadType != RootPayloadType {
		return nil, fmt.Errorf("%w: got %q, want %q", ErrPayloadType, env.PayloadType, RootPayloadType)
	}
	var d rootDoc
	if err := codec.Unmarshal(env.Payload, &d, codec.Limits{MaxBytes: MaxRootDocBytes, MaxElements: MaxRootKeys}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedRoot, err)
	}
	if d.Expires <= 0 {
		return nil, fmt.Errorf("%w: no expiry time", ErrMalformedRoot)
	}
	r := &Root{Version: d.Version, Expires: time.Unix(d.Expires, 0).UTC(), Keys: d.Keys, Roles: d.Roles}
	if err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}

// VerifyInitialRoot accepts a root obtained out of band (trust on first
// use, from a file): it must be signed by a threshold of its own root role
// and not be expired at now.
func VerifyInitialRoot(env *Envelope, now time.Time) (*Root, error) {
	r, err := ParseRoot(env)
	if err != nil {
		return nil, err
	}
	if err := VerifyThreshold(env, RootPayloadType, r.Keys, r.Roles[RoleRoot]); err != nil {
		return nil, fmt.Errorf("root v%d is not signed by its own root role: %w", r.Version, err)
	}
	if !now.Before(r.Expires) {
		return nil, fmt.Errorf("%w: root v%d expired at %s", ErrRootExpired, r.Version, r.Expires.Format(time.RFC3339))
	}
	return r, nil
}

// UpdateRoot accepts next only if its version is trusted.Version+1 and it is
// signed by a threshold of trusted's root role and a threshold of its own
// root role. It does not check expiry (see WalkRoots).
func UpdateRoot(trusted *Root, next *Envelope) (*Root, error) {
	if trusted == nil {
		return nil, fmt.Errorf("%w: no trusted root to update", ErrMalformedRoot)
	}
	r, err := ParseRoot(next)
	if err != nil {
		return nil, err
	}
	if r.Version != trusted.Version+1 {
		return nil, fmt.Errorf("%w: trusted v%d, offered v%d", ErrRootVersion, trusted.Version, r.Version)
	}
	if err := VerifyThreshold(next, RootPayloadType, trusted.Keys, trusted.Roles[RoleRoot]); err != nil {
		return nil, fmt.Errorf("root v%d is not signed by the root role of v%d: %w", r.Version, trusted.Version, err)
	}
	if err := VerifyThreshold(next, RootPayloadType, r.Keys, r.Roles[RoleRoot]); err != nil {
		return nil, fmt.Errorf("root v%d is not signed by its own root role: %w", r.Version, err)
	}
	return r, nil
}

// WalkRoots applies chain, in order, to trusted with UpdateRoot. Roots
// along the way may have expired; the final one must not be expired at now
// (ErrRootExpired), since it is the one new releases are checked against.
func WalkRoots(trusted *Root, chain []*Envelope, now time.Time) (*Root, error) {
	cur := trusted
	for i, env := range chain {
		next, err := UpdateRoot(cur, env)
		if err != nil {
			return nil, fmt.Errorf("root chain element %d: %w", i, err)
		}
		cur = next
	}
	if cur == nil {
		return nil, fmt.Errorf("%w: no trusted root", ErrMalformedRoot)
	}
	if !now.Before(cur.Expires) {
		return nil, fmt.Errorf("%w: root v%d expired at %s", ErrRootExpired, cur.Version, cur.Expires.Format(time.RFC3339))
	}
	return cur, nil
}
