package publisher

import (
	"context"
	"fmt"
	"io"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/content/store"
	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/node/bundle"
	"github.com/meshota/meshota/protocol"
)

// Request says what to publish.
type Request struct {
	Channel string
	Version string
	// Source is a file or directory tree.
	Source string
	// RolloutBasisPoints is the share of the fleet (0..10000); 0 means all.
	RolloutBasisPoints uint16
	// Expires is how long the manifest is valid (default 30 days).
	Expires time.Duration
	// Progress, if set, receives the plaintext bytes read so far.
	Progress func(bytesRead uint64)
}

// Result describes a published manifest.
type Result struct {
	Manifest []byte // signed, ready to announce
	Sequence uint64
	Version  string
	Size     uint64 // plaintext bytes
	Blocks   int
	Delta    content.Delta // chunks and bytes new versus the previous release
	Took     time.Duration
}

// DefaultExpiry is how long a manifest is valid unless told otherwise.
const DefaultExpiry = 30 * 24 * time.Hour

// Publish encrypts and stores the release at r.Source and signs its
// manifest: sequence one above the channel's last, sealed for the current
// keyring epoch.
func (p *Publisher) Publish(ctx context.Context, r Request) (*Result, error) {
	start := p.now()
	cs, ks, err := p.loadChannel(r.Channel)
	if err != nil {
		return nil, err
	}
	if err := protocol.ValidateVersion(r.Version); err != nil {
		return nil, err
	}
	var prev *content.Index
	if last := lastRelease(cs); last != nil {
		if c, err := protocol.CompareVersions(r.Version, last.Version); err != nil || c <= 0 {
			return nil, fmt.Errorf("%w: %s is not above %s (use meshota rollback to return to an older version)", ErrVersionNotNewer, r.Version, last.Version)
		}
		prev, err = p.openIndex(ctx, r.Channel, last)
		if err != nil {
			return nil, fmt.Errorf("previous release (for the delta): %w", err)
		}
	}
	secret, err := p.channelSecret(r.Channel)
	if err != nil {
		return nil, err
	}
	rel, err := content.Publish(ctx, p.store.Blockstore(), content.PublishOptions{
		Channel: r.Channel, Secret: secret, Source: r.Source, Previous: prev, Progress: r.Progress,
	})
	if err != nil {
		return nil, err
	}
	rollout := r.RolloutBasisPoints
	if rollout == 0 {
		rollout = protocol.MaxRolloutBasisPoints
	}
	res, err := p.sign(ctx, cs, ks, signRequest{
		channel: r.Channel, version: r.Version, index: rel.IndexRoot, blockList: rel.BlockListRoot,
		key: rel.Key, size: rel.Size, rollout: rollout, expires: r.Expires,
	})
	if err != nil {
		return nil, err
	}
	res.Blocks, res.Delta, res.Took = rel.Blocks, rel.Delta, p.now().Sub(start)
	return res, nil
}

// Rollout re-signs the channel's current release with a wider rollout.
func (p *Publisher) Rollout(ctx context.Context, channel string, basisPoints uint16, expires time.Duration) (*Result, error) {
	cs, ks, err := p.loadChannel(channel)
	if err != nil {
		return nil, err
	}
	last := lastRelease(cs)
	if last == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoRelease, channel)
	}
	m, err := protocol.DecodeManifest(last.Manifest, p.limits)
	if err != nil {
		return nil, err
	}
	if basisPoints > protocol.MaxRolloutBasisPoints || basisPoints <= m.RolloutBasisPoints {
		return nil, fmt.Errorf("%w: currently %d.%02d%%, asked %d.%02d%%", ErrNarrowerRollout,
			m.RolloutBasisPoints/100, m.RolloutBasisPoints%100, basisPoints/100, basisPoints%100)
	}
	return p.resign(ctx, cs, ks, last, m, basisPoints, expires, false)
}

// Rollback signs a new manifest (higher sequence) that returns the channel
// to an earlier version's content, marked as a rollback.
func (p *Publisher) Rollback(ctx context.Context, channel, version string, expires time.Duration) (*Result, error) {
	cs, ks, err := p.loadChannel(channel)
	if err != nil {
		return nil, err
	}
	var target *releaseRecord
	for i := range cs.Releases {
		if cs.Releases[i].Version == version && cs.Releases[i].Content {
			target = &cs.Releases[i]
		}
	}
	if target == nil {
		return nil, fmt.Errorf("%w: %q in %q", ErrUnknownVersion, version, channel)
	}
	m, err := protocol.DecodeManifest(target.Manifest, p.limits)
	if err != nil {
		return nil, err
	}
	return p.resign(ctx, cs, ks, target, m, protocol.MaxRolloutBasisPoints, expires, true)
}

func (p *Publisher) resign(ctx context.Context, cs *channelState, ks *protocol.KeyringState, rec *releaseRecord, m *protocol.Manifest, rollout uint16, expires time.Duration, rollback bool) (*Result, error) {
	var key crypto.SymmetricKey
	copy(key[:], rec.Key)
	start := p.now()
	res, err := p.sign(ctx, cs, ks, signRequest{
		channel: m.Channel, version: m.Version, index: m.Index, blockList: m.Blocks,
		key: key, size: m.Size, rollout: rollout, expires: expires, rollback: rollback, sameContent: true,
	})
	if err != nil {
		return nil, err
	}
	res.Took = p.now().Sub(start)
	return res, nil
}

type signRequest struct {
	channel, version string
	index, blockList cid.Cid
	key              crypto.SymmetricKey
	size             uint64
	rollout          uint16
	expires          time.Duration
	rollback         bool
	sameContent      bool
}

// sign builds the keyring blocks of the current epoch and the manifest,
// signs it, and records the release.
func (p *Publisher) sign(ctx context.Context, cs *channelState, ks *protocol.KeyringState, r signRequest) (*Result, error) {
	kroot, shards, ref, err := ks.Build(p.limits)
	if err != nil {
		return nil, err
	}
	for _, b := range append([]protocol.Block{kroot}, shards...) {
		blk, err := blocks.NewBlockWithCid(b.Data, b.CID)
		if err != nil {
			return nil, err
		}
		if err := p.store.Blockstore().Put(ctx, blk); err != nil {
			return nil, err
		}
	}
	count, bytes, err := p.blockTotals(ctx, r.blockList)
	if err != nil {
		return nil, err
	}
	var seq, prev uint64 = 1, 0
	if last := lastRelease(cs); last != nil {
		seq, prev = last.Sequence+1, last.Sequence
	}
	if r.expires == 0 {
		r.expires = DefaultExpiry
	}
	now := p.now()
	m := &protocol.Manifest{
		Channel:            r.channel,
		Sequence:           seq,
		Version:            r.version,
		Created:            now,
		Expires:            now.Add(r.expires),
		RootVersion:        p.root.Version,
		Size:               r.size,
		BlockBytes:         bytes,
		BlockCount:         count,
		Index:              r.index,
		Blocks:             r.blockList,
		Keyring:            ref,
		RolloutBasisPoints: r.rollout,
		Supersedes:         prev,
	}
	if r.rollback {
		m.Rollback, m.RollbackTo = true, r.version
	}
	epochKey, _ := ks.EpochKey(ks.Epoch)
	protocol.SealReleaseKey(m, &epochKey, &r.key)
	data, err := protocol.SignManifest(m, p.limits, p.relKey)
	if err != nil {
		return nil, err
	}
	cs.Releases = append(cs.Releases, releaseRecord{
		Sequence: seq, Version: r.version, Manifest: data, Key: r.key[:],
		Content: !r.sameContent || r.rollback, BlockList: r.blockList.Bytes(),
	})
	keyring := []cid.Cid{kroot.CID}
	for _, b := range shards {
		keyring = append(keyring, b.CID)
	}
	if err := p.store.Pin(ctx, store.Pin{Channel: r.channel, Sequence: seq, BlockList: r.blockList, Extra: keyring}); err != nil {
		return nil, err
	}
	if err := p.saveChannel(r.channel, cs, ks); err != nil {
		return nil, err
	}
	return &Result{Manifest: data, Sequence: seq, Version: r.version, Size: r.size}, nil
}

// blockTotals counts the blocks of a release and their bytes, from its
// block list.
func (p *Publisher) blockTotals(ctx context.Context, root cid.Cid) (uint64, uint64, error) {
	bs := p.store.Blockstore()
	bl, err := content.ReadBlockList(ctx, bs, root)
	if err != nil {
		return 0, 0, err
	}
	var n, total uint64
	for _, c := range append(append([]cid.Cid{root}, bl.Pages...), bl.All()...) {
		size, err := bs.GetSize(ctx, c)
		if err != nil {
			return 0, 0, fmt.Errorf("block %s: %w", c, err)
		}
		n++
		total += uint64(size)
	}
	return n, total, nil
}

func lastRelease(cs *channelState) *releaseRecord {
	if len(cs.Releases) == 0 {
		return nil
	}
	return &cs.Releases[len(cs.Releases)-1]
}

func (p *Publisher) openIndex(ctx context.Context, channel string, rec *releaseRecord) (*content.Index, error) {
	m, err := protocol.DecodeManifest(rec.Manifest, p.limits)
	if err != nil {
		return nil, err
	}
	var key crypto.SymmetricKey
	copy(key[:], rec.Key)
	bs := p.store.Blockstore()
	return content.OpenIndex(ctx, bs, content.StoreSource{Getter: bs}, m.Index, &key, channel)
}

// Latest returns the channel's latest signed manifest.
func (p *Publisher) Latest(channel string) ([]byte, error) {
	cs, _, err := p.loadChannel(channel)
	if err != nil {
		return nil, err
	}
	last := lastRelease(cs)
	if last == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoRelease, channel)
	}
	return last.Manifest, nil
}

// WriteBundle writes the channel's latest release as a CAR bundle: the
// manifest, roots, enrollments and every block, for a seed to import.
func (p *Publisher) WriteBundle(ctx context.Context, w io.Writer, channel string) error {
	cs, _, err := p.loadChannel(channel)
	if err != nil {
		return err
	}
	last := lastRelease(cs)
	if last == nil {
		return fmt.Errorf("%w: %q", ErrNoRelease, channel)
	}
	doc := &bundle.Document{Manifest: last.Manifest, Roots: p.roots, Enrollments: cs.Enrollments}
	return bundle.Write(ctx, w, p.store.Blockstore(), doc, p.limits)
}
