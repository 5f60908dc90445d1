package store

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
)

// BenchmarkPackCommit appends 256 MiB as synced batches of 32 values of
// 256 KiB (publish's batches), the store's share of publishing.
func BenchmarkPackCommit(b *testing.B) {
	const size, batch, total = 256 << 10, 32, 256 << 20
	values := randValues(rand.New(rand.NewPCG(1, 2)), batch, size)
	ctx := context.Background()
	benchPacks(b, total, func(d *packDir) {
		for i := 0; i < total/size; i += batch {
			bt, _ := d.Batch(ctx)
			for j, v := range values {
				if err := bt.Put(ctx, key(i+j), v); err != nil {
					b.Fatal(err)
				}
			}
			if err := bt.Commit(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPackConcurrentPuts stores 64 MiB of 256 KiB values with a Put
// each from 16 goroutines: what boxo's blockservice does on an agent,
// which stores every block it fetches with its own Put from the bitswap
// session that fetched it (one per chunk of content.Assemble's window).
func BenchmarkPackConcurrentPuts(b *testing.B) {
	const size, putters, total = 256 << 10, 16, 64 << 20
	values := randValues(rand.New(rand.NewPCG(1, 2)), putters, size)
	ctx := context.Background()
	benchPacks(b, total, func(d *packDir) {
		var wg sync.WaitGroup
		for p, v := range values {
			wg.Go(func() {
				for i := p; i < total/size; i += putters {
					if err := d.Put(ctx, key(i), v); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

// benchPacks times fill, which stores total bytes, into a new pack store
// per iteration.
func benchPacks(b *testing.B, total int64, fill func(*packDir)) {
	b.SetBytes(total)
	for b.Loop() {
		b.StopTimer()
		d, err := openPackDir(b.TempDir(), nil, true)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		fill(d)
		b.StopTimer()
		d.Close()
		b.StartTimer()
	}
}
