package exchange

import (
	"context"
	"log/slog"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// stallSource re-asks for blocks that stop coming.
//
// Seen here: a session that got a block with the wrong bytes from one peer
// did not ask an honest peer for it, and a session that asked while no
// connected peer had a block yet waited past a minute after a neighbour
// fetched it. A bitswap session that
// asked while no connected peer had a block yet can wait a long time before
// it searches again, even once a neighbour has fetched the block; a fresh
// request asks every connected peer at once. Each re-request covers only
// what is still missing, so nothing is fetched twice.
type stallSource struct {
	src   source
	stall time.Duration
	log   *slog.Logger // nil discards
}

type source interface {
	GetBlocks(ctx context.Context, cids []cid.Cid) <-chan blocks.Block
}

func (s stallSource) GetBlocks(ctx context.Context, cids []cid.Cid) <-chan blocks.Block {
	out := make(chan blocks.Block)
	go func() {
		defer close(out)
		missing := make(map[cid.Cid]bool, len(cids))
		for _, c := range cids {
			missing[c] = true
		}
		for len(missing) > 0 && ctx.Err() == nil {
			want := make([]cid.Cid, 0, len(missing))
			for _, c := range cids {
				if missing[c] {
					want = append(want, c)
				}
			}
			rctx, cancel := context.WithCancel(ctx)
			in := s.src.GetBlocks(rctx, want)
			timer := time.NewTimer(s.stall)
		recv:
			for {
				select {
				case b, ok := <-in:
					if !ok {
						break recv
					}
					if !missing[b.Cid()] {
						continue
					}
					delete(missing, b.Cid())
					select {
					case out <- b:
					case <-ctx.Done():
						break recv
					}
					timer.Reset(s.stall)
				case <-timer.C:
					if s.log != nil {
						s.log.Info("block fetch stalled; asking every peer again", "missing", len(missing), "of", len(cids), "stall", s.stall)
					}
					break recv // stalled: ask again
				}
			}
			timer.Stop()
			cancel()
			for range in { // let the source wind down
			}
		}
	}()
	return out
}
