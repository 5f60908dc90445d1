package exchange

import (
	"context"

	"github.com/ipfs/boxo/bitswap"
	bsexchange "github.com/ipfs/boxo/exchange"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/content"
)

// verifiedFetches is bitswap as the blockservice's exchange, with every
// block its fetches deliver marked content.Verified, so that content does
// not hash it a second time (≈9% of the CPU of an agent's fetch, ≈20% of
// figure 3b's exchange CPU: docs/PERFORMANCE.md 3b, session 6).
//
// Why the mark is true (boxo v0.43): a bitswap fetch delivers only blocks
// the client published to its sessions, which are (1) blocks received
// from the network, whose CID the message decoder computed from their
// bytes (message.NewWantlistBlock: prefix.Sum; deprecated blocks:
// blocks.NewBlock), and (2) blocks given to NotifyNewBlocks, which only
// the blockservice calls here, with blocks just fetched this way. A
// session delivers a block for the CID it was asked (notifications are
// keyed by the whole CID), and content checks that the block's CID is the
// one it asked for. The blockservice's own answers from the local store
// (no hash: the disk is not trusted) never pass through here and stay
// unmarked. Nothing else may call NotifyNewBlocks or the blockservice's
// AddBlock(s) with blocks read from a disk.
type verifiedFetches struct{ *bitswap.Bitswap }

var _ bsexchange.SessionExchange = verifiedFetches{}

func (v verifiedFetches) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	return verifiedSession{v.Bitswap}.GetBlock(ctx, c)
}

func (v verifiedFetches) GetBlocks(ctx context.Context, cids []cid.Cid) (<-chan blocks.Block, error) {
	return verifiedSession{v.Bitswap}.GetBlocks(ctx, cids)
}

// NewSession makes blockservice sessions fetch through marked sessions.
func (v verifiedFetches) NewSession(ctx context.Context) bsexchange.Fetcher {
	return verifiedSession{v.Bitswap.NewSession(ctx)}
}

// verifiedSession is a bitswap fetcher (bitswap itself, or one of its
// sessions) whose blocks are marked.
type verifiedSession struct{ f bsexchange.Fetcher }

func (s verifiedSession) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	b, err := s.f.GetBlock(ctx, c)
	if err != nil {
		return nil, err
	}
	return content.Verified(b), nil
}

// GetBlocks passes on the fetch's blocks marked, until the fetch ends or
// ctx is done.
func (s verifiedSession) GetBlocks(ctx context.Context, cids []cid.Cid) (<-chan blocks.Block, error) {
	in, err := s.f.GetBlocks(ctx, cids)
	if err != nil {
		return nil, err
	}
	out := make(chan blocks.Block)
	go func() {
		defer close(out)
		for b := range in {
			select {
			case out <- content.Verified(b):
			case <-ctx.Done():
				for range in { // bitswap closes it once it sees ctx done
				}
				return
			}
		}
	}()
	return out, nil
}
