package store

import (
	"context"

	ds "github.com/ipfs/go-datastore"
)

// putGroup is the Puts that share one append and one fdatasync (Put).
type putGroup struct {
	ops  []op
	done chan struct{} // closed once the group's append returned
	err  error         // its error, for every Put of the group
}

// Put appends one record and returns once it is durable, as a batch of
// one would, but Puts that come while another append holds the writer
// share the next append and its fdatasync (a group commit). boxo's
// blockservice stores every block it fetches with its own Put, from as
// many goroutines as fetches run (an agent runs a bitswap session per
// chunk of its window): each paid a direct write and an fdatasync in
// series (≈4 ms on the project VM; BenchmarkPackConcurrentPuts, and
// docs/PERFORMANCE.md 3b, session 6). What a crash can lose is
// unchanged: no Put has returned for a record not yet synced.
func (d *packDir) Put(ctx context.Context, k ds.Key, value []byte) error {
	if err := checkPut(k, value); err != nil {
		return err
	}
	// The record's CRC is computed here, by each Put on its own
	// goroutine, not by the one that appends the group holding the writer.
	o := op{key: k.String(), value: value, crc: valueCRC(value), hasCRC: true}
	d.gmu.Lock()
	g := d.pending
	if g == nil {
		g = &putGroup{done: make(chan struct{})}
		d.pending = g
	}
	g.ops = append(g.ops, o)
	d.gmu.Unlock()

	d.wmu.Lock()
	defer d.wmu.Unlock()
	select {
	case <-g.done: // an earlier Put of the group appended it
	default:
		// g is still pending: a group leaves pending only whole, under
		// wmu, and is done before wmu is released.
		d.gmu.Lock()
		d.pending = nil
		d.gmu.Unlock()
		g.err = d.appendOps(g.ops, true)
		close(g.done)
	}
	return g.err
}
