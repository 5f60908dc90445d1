package publisher

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/meshota/meshota/crypto"
)

// RotateRoot replaces the root and release keys: trust root version N+1
// names the new keys and is signed by the old root key and the new one, so
// that devices trusting version N accept it (and devices that see only
// the new key cannot be fooled by it alone). The old keys are kept under
// keys/retired/ for the record; manifests signed with them are refused by
// devices from then on. It returns the new root's version.
func (p *Publisher) RotateRoot(expiry time.Duration) (uint64, error) {
	if expiry == 0 {
		expiry = 365 * 24 * time.Hour
	}
	newRoot, err := crypto.GenerateSigningKey()
	if err != nil {
		return 0, err
	}
	newRel, err := crypto.GenerateSigningKey()
	if err != nil {
		return 0, err
	}
	r := &crypto.Root{
		Version: p.root.Version + 1,
		Expires: p.now().Add(expiry).Truncate(time.Second),
		Keys:    map[crypto.KeyID]crypto.PublicKey{newRoot.Public().ID(): newRoot.Public(), newRel.Public().ID(): newRel.Public()},
		Roles: map[string]crypto.Role{
			crypto.RoleRoot:    {KeyIDs: []crypto.KeyID{newRoot.Public().ID()}, Threshold: 1},
			crypto.RoleRelease: {KeyIDs: []crypto.KeyID{newRel.Public().ID()}, Threshold: 1},
		},
	}
	env, err := crypto.SignRoot(r, p.rootKey, newRoot)
	if err != nil {
		return 0, err
	}
	// Check it as a device would before anything is written.
	next, err := crypto.UpdateRoot(p.root, env)
	if err != nil {
		return 0, fmt.Errorf("new trust root does not verify: %w", err)
	}
	b, err := env.Marshal()
	if err != nil {
		return 0, err
	}
	// Order for crash safety: new keys under temporary names, then the root
	// file (the commit point), then the keys swapped in. Open finishes an
	// interrupted swap (see finishRotation).
	keys := filepath.Join(p.dir, "keys")
	if err := crypto.WriteSigningKeyFile(filepath.Join(keys, "root.key.next"), newRoot); err != nil {
		return 0, err
	}
	if err := crypto.WriteSigningKeyFile(filepath.Join(keys, "release.key.next"), newRel); err != nil {
		return 0, err
	}
	if err := writeFile(rootPath(p.dir, r.Version), b, 0o644); err != nil {
		return 0, err
	}
	if err := finishRotation(p.dir, p.root.Version); err != nil {
		return 0, err
	}
	p.root, p.rootKey, p.relKey = next, newRoot, newRel
	p.roots = append(p.roots, b)
	return r.Version, nil
}

// finishRotation moves keys/*.key.next into place once the new root file
// exists, retiring the keys of root version old.
func finishRotation(dir string, old uint64) error {
	keys := filepath.Join(dir, "keys")
	if _, err := os.Stat(filepath.Join(keys, "root.key.next")); err != nil {
		return nil // nothing pending
	}
	retired := filepath.Join(keys, "retired")
	if err := os.MkdirAll(retired, 0o700); err != nil {
		return err
	}
	for _, name := range []string{"root.key", "release.key"} {
		next := filepath.Join(keys, name+".next")
		if _, err := os.Stat(next); err != nil {
			continue
		}
		if err := os.Rename(filepath.Join(keys, name), filepath.Join(retired, fmt.Sprintf("v%d-%s", old, name))); err != nil && !os.IsNotExist(err) {
			return err
		}
		if err := os.Rename(next, filepath.Join(keys, name)); err != nil {
			return err
		}
	}
	return nil
}

// recoverRotation completes or abandons a rotation interrupted by a
// crash: if the new root file was written, the new keys are swapped in;
// if not, the unused new keys are removed.
func recoverRotation(dir string) error {
	keys := filepath.Join(dir, "keys")
	if _, err := os.Stat(filepath.Join(keys, "root.key.next")); err != nil {
		return nil
	}
	entries, err := os.ReadDir(filepath.Join(dir, "roots"))
	if err != nil {
		return err
	}
	next, err := crypto.ReadSigningKeyFile(filepath.Join(keys, "root.key.next"))
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		b, err := os.ReadFile(filepath.Join(dir, "roots", entries[len(entries)-1].Name()))
		if err != nil {
			return err
		}
		env, err := crypto.ParseEnvelope(b, 64<<10)
		if err != nil {
			return err
		}
		r, err := crypto.ParseRoot(env)
		if err != nil {
			return err
		}
		if _, ok := r.Keys[next.Public().ID()]; ok {
			return finishRotation(dir, r.Version-1)
		}
	}
	os.Remove(filepath.Join(keys, "root.key.next"))
	os.Remove(filepath.Join(keys, "release.key.next"))
	return nil
}
