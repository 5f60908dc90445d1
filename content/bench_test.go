package content_test

import (
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/content/store"
	"github.com/meshota/meshota/crypto"
)

const benchChannel = "meshota/bench"

var benchSecret = crypto.ChannelSecret{7}

func quick() bool { return os.Getenv("BENCH_QUICK") == "1" }

// writeRandomFile writes size pseudo-random bytes to dir/name.
func writeRandomFile(b *testing.B, dir, name string, size int) string {
	b.Helper()
	os.MkdirAll(dir, 0o755)
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.NewChaCha8([32]byte{1})
	if _, err := io.CopyN(f, r, int64(size)); err != nil {
		b.Fatal(err)
	}
	f.Close()
	return p
}

// procCPU is the CPU time (user + system) this process has used.
func procCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sha256Pass is the baseline: one SHA-256 pass over the file.
func sha256Pass(b *testing.B, p string) time.Duration {
	t0 := time.Now()
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		b.Fatal(err)
	}
	h.Sum(nil)
	return time.Since(t0)
}

// ratios accumulates a benchmark's times against the SHA-256 baseline,
// wall clock and CPU: x_sha256 is the target's measure; x_sha256_cpu
// (baseline CPU time over the benchmark's) says how much work each byte
// costs, whatever the load of the machine: on 2 cores x_sha256 can reach
// at most twice it.
type ratios struct{ shaT, shaCPU, t, cpu time.Duration }

func (r *ratios) sha(b *testing.B, p string) {
	c0 := procCPU()
	r.shaT += sha256Pass(b, p)
	r.shaCPU += procCPU() - c0
}

// measure times fn, wall clock and CPU.
func (r *ratios) measure(fn func()) {
	t0, c0 := time.Now(), procCPU()
	fn()
	r.t += time.Since(t0)
	r.cpu += procCPU() - c0
}

func (r *ratios) report(b *testing.B, size int) {
	b.ReportMetric(float64(r.shaT)/float64(r.t), "x_sha256")
	b.ReportMetric(float64(r.shaCPU)/float64(r.cpu), "x_sha256_cpu")
	b.ReportMetric(float64(r.cpu)/float64(r.t), "cores") // CPU time over wall time
	b.ReportMetric(float64(size)*float64(b.N)/r.shaT.Seconds()/1e6, "sha256_MB/s")
}

type storeKind struct {
	name string
	open func(b *testing.B) (blockstore.Blockstore, func())
}

var storeKinds = []storeKind{
	{"mem", memStore},
	{"pack", diskStore(store.Pack)},
	{"flat", diskStore(store.Flat)},
	{"leveldb", diskStore(store.LevelDB)},
}

func memStore(*testing.B) (blockstore.Blockstore, func()) {
	return blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore())), func() {}
}

func diskStore(backend store.Backend) func(*testing.B) (blockstore.Blockstore, func()) {
	return func(b *testing.B) (blockstore.Blockstore, func()) {
		s, err := store.Open(b.TempDir(), store.Options{Backend: backend})
		if err != nil {
			b.Fatal(err)
		}
		return s.Blockstore(), func() { s.Close() }
	}
}

func benchSize() int {
	if quick() {
		return 32 << 20
	}
	return 256 << 20
}

// BenchmarkPublish measures chunk + encrypt + hash + store of a 256 MiB file
// (BENCH_QUICK=1: 32 MiB) and a plain SHA-256 pass over the same bytes in
// the same run; x_sha256 is publish throughput over SHA-256 throughput.
func BenchmarkPublish(b *testing.B) {
	size := benchSize()
	src := writeRandomFile(b, filepath.Join(b.TempDir(), "src"), "data", size)
	for _, k := range storeKinds {
		b.Run(k.name, func(b *testing.B) {
			b.SetBytes(int64(size))
			var r ratios
			for b.Loop() {
				b.StopTimer()
				bs, closeFn := k.open(b)
				r.sha(b, src)
				b.StartTimer()
				r.measure(func() {
					if _, err := content.Publish(context.Background(), bs, content.PublishOptions{Channel: benchChannel, Secret: &benchSecret, Source: src}); err != nil {
						b.Fatal(err)
					}
				})
				b.StopTimer()
				closeFn()
				b.StartTimer()
			}
			r.report(b, size)
		})
	}
}

// assembleKinds are the device stores of BenchmarkAssemble: each store
// kind keeping every block, and packs with PlaintextOnly (index blocks in
// the packs, chunks only in staging).
var assembleKinds = append(storeKindsWith(content.AssembleOptions{}, ""),
	assembleKind{storeKind{"pack-plaintext", diskStore(store.Pack)}, content.AssembleOptions{PlaintextOnly: true}})

type assembleKind struct {
	storeKind
	opt content.AssembleOptions
}

func storeKindsWith(opt content.AssembleOptions, suffix string) []assembleKind {
	var out []assembleKind
	for _, k := range storeKinds {
		out = append(out, assembleKind{storeKind{k.name + suffix, k.open}, opt})
	}
	return out
}

// BenchmarkAssemble measures OpenIndex + Assemble (fetch from a source,
// verify, store, decrypt, write staging) of a 256 MiB release against a
// SHA-256 pass over the same bytes in the same run. The store kind is the
// device's; the source stands for the network and is always a memory
// store: reading the publisher's disk is the seed's work, not the
// device's (the network's own cost is figure 3).
func BenchmarkAssemble(b *testing.B) {
	size := benchSize()
	ctx := context.Background()
	src := writeRandomFile(b, filepath.Join(b.TempDir(), "src"), "data", size)
	for _, k := range assembleKinds {
		b.Run(k.name, func(b *testing.B) {
			pub, closePub := memStore(b) // the network
			defer closePub()
			rel, err := content.Publish(ctx, pub, content.PublishOptions{Channel: benchChannel, Secret: &benchSecret, Source: src})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			var r ratios
			for b.Loop() {
				b.StopTimer()
				dev, closeDev := k.open(b)
				staging := filepath.Join(b.TempDir(), "stage")
				r.sha(b, src)
				b.StartTimer()
				r.measure(func() {
					x, err := content.OpenIndex(ctx, dev, content.StoreSource{Getter: pub}, rel.IndexRoot, &rel.Key, benchChannel)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := content.Assemble(ctx, dev, content.StoreSource{Getter: pub}, x, staging, k.opt); err != nil {
						b.Fatal(err)
					}
				})
				b.StopTimer()
				closeDev()
				os.RemoveAll(staging)
				b.StartTimer()
			}
			r.report(b, size)
		})
	}
}

// BenchmarkAssemblePeakHeap assembles a 1 GiB release (BENCH_QUICK=1:
// 128 MiB) between two on-disk stores and reports the peak live heap seen
// while it ran (sampled every millisecond), target at most 64 MiB; the
// device keeps every block (blocks) or plaintext only (plaintext).
func BenchmarkAssemblePeakHeap(b *testing.B) {
	for _, m := range []struct {
		name string
		opt  content.AssembleOptions
	}{{"blocks", content.AssembleOptions{}}, {"plaintext", content.AssembleOptions{PlaintextOnly: true}}} {
		b.Run(m.name, func(b *testing.B) { benchmarkAssemblePeakHeap(b, m.opt) })
	}
}

func benchmarkAssemblePeakHeap(b *testing.B, opt content.AssembleOptions) {
	size := 1 << 30
	if quick() {
		size = 128 << 20
	}
	ctx := context.Background()
	src := writeRandomFile(b, filepath.Join(b.TempDir(), "src"), "data", size)
	pubS, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer pubS.Close()
	rel, err := content.Publish(ctx, pubS.Blockstore(), content.PublishOptions{Channel: benchChannel, Secret: &benchSecret, Source: src})
	if err != nil {
		b.Fatal(err)
	}
	rel.Index = nil // the publisher's copy is not part of the device's heap
	var peak uint64
	b.SetBytes(int64(size))
	for b.Loop() {
		b.StopTimer()
		devS, err := store.Open(b.TempDir(), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		staging := filepath.Join(b.TempDir(), "stage")
		runtime.GC()
		var stop atomic.Bool
		done := make(chan uint64)
		go func() {
			var m runtime.MemStats
			var p uint64
			for !stop.Load() {
				runtime.ReadMemStats(&m)
				p = max(p, m.HeapAlloc)
				time.Sleep(time.Millisecond)
			}
			done <- p
		}()
		b.StartTimer()
		x, err := content.OpenIndex(ctx, devS.Blockstore(), content.StoreSource{Getter: pubS.Blockstore()}, rel.IndexRoot, &rel.Key, benchChannel)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := content.Assemble(ctx, devS.Blockstore(), content.StoreSource{Getter: pubS.Blockstore()}, x, staging, opt); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		stop.Store(true)
		peak = max(peak, <-done)
		devS.Close()
		os.RemoveAll(staging)
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak_heap_MiB")
}

// BenchmarkServe measures what a device pays to serve each chunk block
// of a 64 MiB release (BENCH_QUICK=1: 16 MiB) once: read from its pack
// store (pack: a device keeping blocks), or read from the installed
// plaintext, sealed again and hashed (reseal: a plaintext-only device,
// content.ChunkMap). x_sha256 is against a SHA-256 pass over the file.
func BenchmarkServe(b *testing.B) {
	size := 64 << 20
	if quick() {
		size = 16 << 20
	}
	ctx := context.Background()
	src := writeRandomFile(b, filepath.Join(b.TempDir(), "src"), "data", size)
	pub, closePub := memStore(b)
	defer closePub()
	rel, err := content.Publish(ctx, pub, content.PublishOptions{Channel: benchChannel, Secret: &benchSecret, Source: src})
	if err != nil {
		b.Fatal(err)
	}
	dev, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close()
	x, err := content.OpenIndex(ctx, dev.Blockstore(), content.StoreSource{Getter: pub}, rel.IndexRoot, &rel.Key, benchChannel)
	if err != nil {
		b.Fatal(err)
	}
	staging := filepath.Join(b.TempDir(), "installed")
	if _, err := content.Assemble(ctx, dev.Blockstore(), content.StoreSource{Getter: pub}, x, staging, content.AssembleOptions{}); err != nil {
		b.Fatal(err)
	}
	m, err := content.NewChunkMap(ctx, x, staging, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range []struct {
		name string
		get  func(context.Context, cid.Cid) (blocks.Block, error)
	}{{"pack", dev.Blockstore().Get}, {"reseal", m.Get}} {
		b.Run(k.name, func(b *testing.B) {
			b.SetBytes(int64(size))
			var r ratios
			for b.Loop() {
				b.StopTimer()
				r.sha(b, src)
				b.StartTimer()
				r.measure(func() {
					for _, c := range rel.Index.Chunks {
						if _, err := k.get(ctx, c.CID); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			r.report(b, size)
		})
	}
}
