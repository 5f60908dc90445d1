package exchange

import (
	"sync"
	"time"

	"github.com/ipfs/go-cid"
)

// haveBoard notes when a peer said HAVE for a block some fetch is waiting
// for, so that stallSource can tell a stuck session (the block is there to
// take) from a block nobody has yet. The tracer feeds it; only watched
// blocks are kept, so it holds at most the fetches' windows.
type haveBoard struct {
	mu      sync.Mutex
	waiting map[cid.Cid]int       // fetches waiting for the block
	seen    map[cid.Cid]time.Time // first HAVE since the last forget
}

func newHaveBoard() *haveBoard {
	return &haveBoard{waiting: map[cid.Cid]int{}, seen: map[cid.Cid]time.Time{}}
}

func (h *haveBoard) watch(cids []cid.Cid) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range cids {
		h.waiting[c]++
	}
}

func (h *haveBoard) unwatch(cids []cid.Cid) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range cids {
		if h.waiting[c]--; h.waiting[c] <= 0 {
			delete(h.waiting, c)
			delete(h.seen, c)
		}
	}
}

// forget drops the HAVEs seen so far for cids: a new request starts.
func (h *haveBoard) forget(cids []cid.Cid) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range cids {
		delete(h.seen, c)
	}
}

// have records a HAVE for c at now, if a fetch waits for c.
func (h *haveBoard) have(c cid.Cid, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.seen[c]; !ok && h.waiting[c] > 0 {
		h.seen[c] = now
	}
}

// since says when a peer first said HAVE for c since the last forget.
func (h *haveBoard) since(c cid.Cid) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.seen[c]
	return t, ok
}
