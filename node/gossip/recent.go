package gossip

import (
	"sync"
	"time"
)

// recentSet remembers message digests for a fixed window. It is swept on
// insertion, so its size is bounded by the accepted-message rate times the
// window — and only accepted (valid) messages are inserted.
type recentSet struct {
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	when map[[32]byte]time.Time
}

func newRecentSet(window time.Duration) *recentSet {
	return &recentSet{window: window, now: time.Now, when: map[[32]byte]time.Time{}}
}

func (r *recentSet) seen(d [32]byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.when[d]
	return ok && r.now().Sub(t) < r.window
}

func (r *recentSet) add(d [32]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for k, t := range r.when {
		if now.Sub(t) >= r.window {
			delete(r.when, k)
		}
	}
	r.when[d] = now
}
