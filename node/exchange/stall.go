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
// did not ask an honest peer for it; a session that asked while no
// connected peer had a block yet waited past a minute after a neighbour
// fetched it; and, on a busy machine, a session that was told HAVE by
// several peers never asked any of them for the block (about one
// `meshota demo` run in five). A fresh request asks every connected peer
// at once. Each re-request covers only what is still missing, so nothing
// is fetched twice.
//
// Two clocks decide when to ask again:
//   - stall: no block at all for that long (the peers may be gone, or
//     nobody has the block yet: a neighbour is still fetching it);
//   - quick: a peer said it has a missing block (haves), and since then
//     no block of this fetch arrived and the node read no exchange bytes
//     at all (active) for max(quick, 8 × the mean gap between this
//     fetch's blocks). Then the block is there to take and only the
//     session is stuck, so waiting out the long clock would be waste. On
//     a slow link bytes keep coming and the gaps are long, so a block on
//     its way is not asked for twice.
type stallSource struct {
	src   source
	stall time.Duration
	quick time.Duration // 0: only the stall clock
	haves *haveBoard    // nil: no HAVEs seen, only the stall clock
	// settle, if set, waits until the cancelled request's wants are gone
	// from the node's wantlist: bitswap sends a want to a peer only once,
	// so a new request made while the old wants are still listed reaches
	// no peer at all (measured: a re-ask that stalled a second time).
	settle func(ctx context.Context, cids []cid.Cid)
	// active, if set, says when the node last read exchange bytes: while
	// bytes come in, a block may be on its way (a big block on a slow
	// link), so the quick clock waits.
	active func() time.Time
	log    *slog.Logger // nil discards
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
		if s.haves != nil {
			s.haves.watch(cids)
			defer s.haves.unwatch(cids)
		}
		for len(missing) > 0 && ctx.Err() == nil {
			want := make([]cid.Cid, 0, len(missing))
			for _, c := range cids {
				if missing[c] {
					want = append(want, c)
				}
			}
			if s.haves != nil {
				s.haves.forget(want) // only HAVEs that answer this request count
			}
			rctx, cancel := context.WithCancel(ctx)
			in := s.src.GetBlocks(rctx, want)
			reason := s.receive(ctx, in, missing, out)
			cancel()
			for range in { // let the source wind down
			}
			if reason == "" || len(missing) == 0 || ctx.Err() != nil {
				continue
			}
			if s.log != nil {
				s.log.Info("block fetch stalled; asking every peer again", "reason", reason, "missing", len(missing), "of", len(cids))
			}
			if s.settle != nil {
				s.settle(ctx, want)
			}
		}
	}()
	return out
}

// receive passes on the blocks of one request until it ends (""), or
// stalls: then it says why.
func (s stallSource) receive(ctx context.Context, in <-chan blocks.Block, missing map[cid.Cid]bool, out chan<- blocks.Block) string {
	start := time.Now()
	last, got := start, 0
	quick := s.quick > 0 && s.haves != nil
	// next is when to look again: the stall deadline, or sooner to poll
	// for HAVEs (which arrive without telling this loop).
	next := func(now time.Time) time.Duration {
		d := last.Add(s.stall).Sub(now)
		if quick {
			d = min(d, s.quick/4)
		}
		return max(d, time.Millisecond)
	}
	timer := time.NewTimer(next(start))
	defer timer.Stop()
	for {
		select {
		case b, ok := <-in:
			if !ok {
				return ""
			}
			if !missing[b.Cid()] {
				continue
			}
			delete(missing, b.Cid())
			select {
			case out <- b:
			case <-ctx.Done():
				return ""
			}
			last = time.Now()
			got++
			timer.Reset(next(last))
		case now := <-timer.C:
			if now.Sub(last) >= s.stall {
				return "no block for " + s.stall.String()
			}
			timer.Reset(next(now))
			if !quick {
				continue
			}
			wait := s.quick
			if got >= 2 {
				wait = max(wait, 8*last.Sub(start)/time.Duration(got))
			}
			wait = min(wait, s.stall)
			// Progress since a HAVE resets its clock: a block of this
			// fetch (the session is moving) or any exchange bytes (a
			// block may be on its way).
			moved := last
			if s.active != nil {
				if a := s.active(); a.After(moved) {
					moved = a
				}
			}
			for c := range missing {
				at, ok := s.haves.since(c)
				if ok && now.Sub(later(at, moved)) >= wait {
					return "a peer has a missing block but it did not come in " + wait.Round(time.Millisecond).String()
				}
			}
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
