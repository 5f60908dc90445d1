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
// store, asking the network only for the missing ones, in one request.
func (a *Agent) ensure(ctx context.Context, cids []cid.Cid) error {
	var missing []cid.Cid
	want := make(map[cid.Cid]bool, len(cids))
	for _, c := range cids {
		if _, dup := want[c]; dup {
			continue
		}
		has, err := a.cfg.Store.Has(ctx, c)
		if err != nil {
			return fmt.Errorf("local store: %w", err)
		}
		want[c] = has
		if !has {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := 0
	for b := range a.cfg.Network.GetBlocks(ctx, missing) {
		c := b.Cid()
		if done, asked := want[c]; !asked || done {
			continue
		}
		if err := content.VerifyBlock(c, b.RawData()); err != nil {
			continue // never stored; the fetch of c fails below unless it comes again
		}
		if err := a.cfg.Store.Put(ctx, b); err != nil {
			return fmt.Errorf("local store: %w", err)
		}
		want[c] = true
		if got++; got == len(missing) {
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("%w: %d of %d blocks arrived", content.ErrBlockMissing, got, len(missing))
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
