package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
)

// TestPutsShareAnAppend: Puts that come while an append holds the writer
// go out together in the next one (one aligned append, one fdatasync:
// each separate synced append would start a 4 KiB block of its own), no
// Put returns before its record is in the store, and all are there after
// a reopen (what the store scans from disk); when that append fails,
// every Put of the group returns its error.
func TestPutsShareAnAppend(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail bool // the shared append fails (the store closed meanwhile)
	}{
		{"appended", false},
		{"append fails", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bothWriteModes(t, func(t *testing.T) { testPutsShareAnAppend(t, tc.fail) })
		})
	}
}

func testPutsShareAnAppend(t *testing.T, fail bool) {
	ctx := context.Background()
	d := openTestPacks(t, t.TempDir(), 1<<30)
	defer d.Close()
	const n = 16
	values := randValues(rand.New(rand.NewPCG(3, 3)), n, 100)
	want := map[ds.Key][]byte{}
	for i, v := range values {
		want[key(i)] = v
	}

	d.wmu.Lock() // an append in progress
	var wg sync.WaitGroup
	for i, v := range values {
		wg.Go(func() {
			err := d.Put(ctx, key(i), v)
			switch has, _ := d.Has(ctx, key(i)); {
			case fail && !errors.Is(err, errClosed):
				t.Errorf("Put(%d) = %v after its append failed, want errClosed", i, err)
			case !fail && err != nil:
				t.Error(err)
			case !fail && !has:
				t.Errorf("Put(%d) returned before its record was stored", i)
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); queued(d) < n; {
		if time.Now().After(deadline) {
			d.wmu.Unlock()
			t.Fatalf("%d of %d Puts queued while an append held the writer", queued(d), n)
		}
		time.Sleep(time.Millisecond)
	}
	d.closed = fail
	d.wmu.Unlock()
	wg.Wait()
	if fail {
		d.closed = false // for the deferred Close
		return
	}

	if d.cur.size != alignment {
		t.Errorf("%d Puts took %d bytes of pack: not one shared append", n, d.cur.size)
	}
	checkContents(t, d, want)
	checkReopened(t, d, want)
}

// queued is the number of Puts waiting for the next append.
func queued(d *packDir) int {
	d.gmu.Lock()
	defer d.gmu.Unlock()
	if d.pending == nil {
		return 0
	}
	return len(d.pending.ops)
}
