package agent

import (
	"context"
	"errors"
	"fmt"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/protocol"
)

// ensure makes every block of cids present and verified in the local
// store (content.Fetch: one request for what is missing).
func (a *Agent) ensure(ctx context.Context, cids []cid.Cid) error {
	return content.Fetch(ctx, a.cfg.Store, a.cfg.Network, cids)
}

// getter reads blocks from the store, fetching (and verifying) missing ones
// from the network one at a time: for small documents (block-list pages,
// keyring blocks), not for release data.
func (a *Agent) getter() content.Getter { return netGetter{a} }

type netGetter struct{ a *Agent }

func (g netGetter) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if err := g.a.ensure(ctx, []cid.Cid{c}); err != nil {
		return nil, err
	}
	return g.a.cfg.Store.Get(ctx, c)
}

// errCannotOpen means the device's key does not open its keyring entry.
var errCannotOpen = errors.New("cannot open the epoch key with this device's key")

// openIndex fetches the device's keyring shard, opens the epoch key, the
// release key and the index.
func (a *Agent) openIndex(ctx context.Context, m *protocol.Manifest) (*content.Index, error) {
	l := a.cfg.Limits
	get := a.getter()
	rb, err := get.Get(ctx, m.Keyring.Root)
	if err != nil {
		return nil, fmt.Errorf("keyring root: %w", err)
	}
	root, err := protocol.ParseKeyringRoot(rb.RawData(), m, l)
	if err != nil {
		return nil, err
	}
	idx, sc := root.ShardFor(a.id)
	sb, err := get.Get(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("keyring shard %d: %w", idx, err)
	}
	shard, err := protocol.ParseKeyringShard(sb.RawData(), root, idx, l)
	if err != nil {
		return nil, err
	}
	epochKey, err := protocol.OpenEpochKey(a.cfg.DeviceKey, a.id, shard)
	if errors.Is(err, crypto.ErrDecrypt) {
		return nil, fmt.Errorf("%w: %v", errCannotOpen, err)
	}
	if err != nil {
		return nil, err
	}
	releaseKey, err := protocol.OpenReleaseKey(m, &epochKey)
	if err != nil {
		return nil, fmt.Errorf("%w: release key: %v", errCannotOpen, err)
	}
	return content.OpenIndex(ctx, a.cfg.Store, a.cfg.Network, m.Index, &releaseKey, m.Channel)
}
