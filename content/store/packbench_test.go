package store

import (
	"context"
	"math/rand/v2"
	"testing"
)

// BenchmarkPackCommit appends 256 MiB as synced batches of 32 values of
// 256 KiB (publish's batches), the store's share of publishing.
func BenchmarkPackCommit(b *testing.B) {
	const size, batch, total = 256 << 10, 32, 256 << 20
	values := randValues(rand.New(rand.NewPCG(1, 2)), batch, size)
	ctx := context.Background()
	b.SetBytes(total)
	for b.Loop() {
		b.StopTimer()
		d, err := openPackDir(b.TempDir(), nil, true)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
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
		b.StopTimer()
		d.Close()
		b.StartTimer()
	}
}
