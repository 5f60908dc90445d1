package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/node/install"
	"github.com/meshota/meshota/node/statefile"
	"github.com/meshota/meshota/protocol"
)

// persisted is the agent's durable state. It is saved (atomically) before
// each step whose outcome must survive a crash.
type persisted struct {
	// Roots are the signed trust roots, the initial one first, each the
	// successor of the one before.
	Roots [][]byte `cbor:"1,keyasint"`
	// Mark is the anti-rollback record of the channel: never lowered.
	Mark *protocol.ChannelMark `cbor:"2,keyasint,omitempty"`
	// Manifest is the latest accepted signed manifest, exactly as received:
	// served to peers that catch up, and resumed after a restart.
	Manifest []byte `cbor:"3,keyasint,omitempty"`
	// Installed is the release running now, if any.
	Installed *installedRelease `cbor:"4,keyasint,omitempty"`
	// Failed is the sequence of a release that failed to install or failed
	// its health check: it is not retried; a newer manifest is needed.
	Failed uint64 `cbor:"5,keyasint,omitempty"`
	// Previous is the release installed before Installed (the install
	// directory's previous release), if known.
	Previous *installedRelease `cbor:"6,keyasint,omitempty"`
}

type installedRelease struct {
	Sequence uint64 `cbor:"1,keyasint"`
	Version  string `cbor:"2,keyasint"`
	Index    []byte `cbor:"3,keyasint"` // CID bytes of the release index
	// Manifest is the signed manifest it was installed under and Dir its
	// directory name under releases/ (a newer manifest of the same
	// content keeps the directory): a plaintext-only device maps the
	// release's tree again at start-up (Config.Plain). Empty in states
	// written before; such a release is not served from plaintext.
	Manifest []byte `cbor:"4,keyasint,omitempty"`
	Dir      string `cbor:"5,keyasint,omitempty"`
}

func (r *installedRelease) index() cid.Cid {
	c, err := cid.Cast(r.Index)
	if err != nil {
		return cid.Undef
	}
	return c
}

const stateFile = "agent.state"

func loadState(dir string) (*persisted, error) {
	var p persisted
	err := statefile.Load(filepath.Join(dir, stateFile), &p)
	if errors.Is(err, statefile.ErrNotFound) {
		return &p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return &p, nil
}

// rebuildState replaces a damaged state file: it is kept aside for
// inspection, and what can be known again is taken from the install
// directory. The anti-rollback mark restarts at the running release's
// sequence (its digest is unknown, so that sequence is never accepted
// again); trust restarts from the configured root and walks forward again.
// Blocks in the store are untouched.
func rebuildState(dir string, inst *install.Dir) (*persisted, error) {
	path := filepath.Join(dir, stateFile)
	aside := path + ".corrupt-" + time.Now().UTC().Format("20060102T150405")
	if err := os.Rename(path, aside); err != nil {
		return nil, fmt.Errorf("agent: keep the damaged state aside: %w", err)
	}
	p := &persisted{}
	cur, err := inst.Current()
	if err != nil {
		return nil, err
	}
	if cur != "" {
		r := install.ParseName(cur)
		p.Mark = &protocol.ChannelMark{Sequence: r.Sequence, Version: r.Version}
		p.Installed = &installedRelease{Sequence: r.Sequence, Version: r.Version}
	}
	return p, nil
}

func (p *persisted) save(dir string) error {
	return statefile.Save(filepath.Join(dir, stateFile), p)
}
