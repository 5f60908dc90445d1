package emulate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func testLogger() *slog.Logger {
	if os.Getenv("MESHOTA_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestTwoSites: two sites of three devices behind 1 MB/s links to the
// seed, 10 MB/s between the devices of a site. Every device installs, the
// seed sends each site about one copy, and no device finishes faster than
// its links allow.
func TestTwoSites(t *testing.T) {
	dir := t.TempDir()
	before := runtime.NumGoroutine()
	spec := Spec{
		Sites:        []int{3, 3},
		ReleaseBytes: 2 << 20,
		SeedLink:     Link{Bandwidth: 1e6, Latency: 10 * time.Millisecond},
		LANLink:      Link{Bandwidth: 10e6, Latency: time.Millisecond},
		Seed:         1,
		Timeout:      time.Minute,
		Logger:       testLogger(),
		Dir:          dir,
	}
	r, err := Run(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("setup %v, wall %v, CPU after publish %v; installed after %v", r.Setup.Round(time.Millisecond), r.Wall.Round(time.Millisecond), r.CPU.Round(time.Millisecond), r.Installed)
	copies := float64(r.SeedBytes) / float64(spec.ReleaseBytes) / float64(len(spec.Sites))
	t.Logf("the seed sent %d bytes = %.2f copies per site (by device %v); devices got %d bytes from each other",
		r.SeedBytes, copies, r.DeviceSeedBytes, r.PeerBytes)

	first := 0
	for s, n := range spec.Sites {
		site := r.Installed[first : first+n]
		if slices.Contains(site, -1) {
			t.Fatalf("site %d: not every device installed: %v", s, site)
		}
		// Every block crosses one of the site's seed links at least once,
		// so even the site's first device needs ReleaseBytes over their
		// sum; and a device receives everything over its own links.
		siteBound := time.Duration(float64(spec.ReleaseBytes) / (float64(n) * spec.SeedLink.Bandwidth) * float64(time.Second))
		devBound := time.Duration(float64(spec.ReleaseBytes) / (spec.SeedLink.Bandwidth + float64(n-1)*spec.LANLink.Bandwidth) * float64(time.Second))
		t.Logf("site %d: first %v, last %v; bounds: site %v, device %v",
			s, slices.Min(site).Round(time.Millisecond), slices.Max(site).Round(time.Millisecond), siteBound.Round(time.Millisecond), devBound.Round(time.Millisecond))
		for i, d := range site {
			if d < siteBound || d < devBound {
				t.Errorf("site %d device %d installed after %v, faster than its links allow (%v, %v)", s, i, d, siteBound, devBound)
			}
		}
		if c := float64(r.SiteSeedBytes[s]) / float64(spec.ReleaseBytes); c >= 2 {
			t.Errorf("site %d got %.2f copies from the seed; want under 2", s, c)
		}
		first += n
	}
	var fromSeed int64
	for _, b := range r.SiteSeedBytes {
		fromSeed += b
	}
	if fromSeed != r.SeedBytes {
		t.Errorf("the seed served %d bytes, devices counted %d from it", r.SeedBytes, fromSeed)
	}
	if r.PeerBytes == 0 {
		t.Error("no device got anything from another")
	}
	nothingLeft(t, dir, before)
}

// nothingLeft checks that a run left nothing behind: no directory, and its
// goroutines wind down (a few of libp2p's may take a moment).
func nothingLeft(t *testing.T, dir string, before int) {
	t.Helper()
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left in the directory: %v", left)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+5 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before the run, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTimeoutCleansUp: a run whose devices cannot install in time (the
// seed's links carry 20 KB/s) returns -1 for them and leaves nothing.
func TestTimeoutCleansUp(t *testing.T) {
	dir := t.TempDir()
	before := runtime.NumGoroutine()
	r, err := Run(t.Context(), Spec{
		Sites: []int{2}, ReleaseBytes: 1 << 20, Seed: 2, Timeout: 3 * time.Second, Dir: dir,
		SeedLink: Link{Bandwidth: 20e3}, LANLink: Link{Bandwidth: 10e6}, Logger: testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Installed, []time.Duration{-1, -1}) {
		t.Fatalf("installed %v, want none", r.Installed)
	}
	nothingLeft(t, dir, before)
}

// TestCancelCleansUp: the caller's context ending mid-run returns its
// error, with what was measured, and leaves nothing.
func TestCancelCleansUp(t *testing.T) {
	dir := t.TempDir()
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	r, err := Run(ctx, Spec{
		Sites: []int{2}, ReleaseBytes: 1 << 20, Seed: 2, Dir: dir,
		SeedLink: Link{Bandwidth: 20e3}, LANLink: Link{Bandwidth: 10e6}, Logger: testLogger(),
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want the context's error", err)
	}
	if r == nil || !slices.Equal(r.Installed, []time.Duration{-1, -1}) {
		t.Fatalf("result %+v, want both devices not installed", r)
	}
	nothingLeft(t, dir, before)
}

func TestSpecChecked(t *testing.T) {
	for _, s := range []Spec{
		{ReleaseBytes: 1},
		{Sites: []int{1}},
		{Sites: []int{0}, ReleaseBytes: 1},
		{Sites: []int{255}, ReleaseBytes: 1},
		{Sites: []int{1}, ReleaseBytes: 1, SeedLink: Link{Bandwidth: -1}},
	} {
		if _, err := Run(context.Background(), s); !errors.Is(err, ErrSpec) {
			t.Errorf("Run(%+v) = %v, want ErrSpec", s, err)
		}
	}
}

// BenchmarkEmulate runs fleets of 10-device sites with a 4 MiB release,
// and reports the wall time of a run, when the last device installed and
// the peak heap. Run it once per size: -bench Emulate -benchtime 1x.
func BenchmarkEmulate(b *testing.B) {
	for _, n := range []int{10, 50, 100, 200} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
			sites := make([]int, n/10)
			for i := range sites {
				sites[i] = 10
			}
			spec := Spec{
				Sites: sites, ReleaseBytes: 4 << 20, Seed: 3, Timeout: 10 * time.Minute,
				SeedLink: Link{Bandwidth: 2e6, Latency: 20 * time.Millisecond},
				LANLink:  Link{Bandwidth: 10e6, Latency: time.Millisecond},
			}
			for b.Loop() {
				runtime.GC()
				peak := sampleHeap()
				r, err := Run(b.Context(), spec)
				heap := peak()
				if err != nil {
					b.Fatal(err)
				}
				if slices.Contains(r.Installed, -1) {
					b.Fatalf("not every device installed: %v", r.Installed)
				}
				sorted := slices.Sorted(slices.Values(r.Installed))
				b.ReportMetric(r.Wall.Seconds(), "wall-s")
				b.ReportMetric(r.Setup.Seconds(), "setup-s")
				b.ReportMetric(r.CPU.Seconds(), "cpu-s")
				b.ReportMetric(sorted[len(sorted)/2].Seconds(), "p50-install-s")
				b.ReportMetric(sorted[len(sorted)-1].Seconds(), "last-install-s")
				b.ReportMetric(float64(r.SeedBytes)/float64(spec.ReleaseBytes)/float64(len(sites)), "copies/site")
				b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
			}
		})
	}
}

// sampleHeap samples the live heap every 100 ms until the returned
// function is called, which returns the largest sample.
func sampleHeap() func() uint64 {
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		wg.Wait()
		return peak.Load()
	}
}
