package sim

import (
	"context"
	"os"
	"syscall"
	"testing"
)

// BenchmarkNationalScenario runs the shipped 100,000-device, 100 MiB
// national scenario (issue 7: under 60 s and 4 GiB on 2 cores). With
// BENCH_QUICK=1 it runs 10,000 devices. It reports the simulated events
// per second, the simulated completion time and the process's peak RSS.
func BenchmarkNationalScenario(b *testing.B) {
	data, _ := Example("national")
	var sets []string
	if os.Getenv("BENCH_QUICK") != "" {
		sets = []string{"fleet.devices=10000"}
	}
	sc, err := ParseScenario(data, sets)
	if err != nil {
		b.Fatal(err)
	}
	var events uint64
	var last float64
	for b.Loop() {
		r, err := Simulate(context.Background(), sc, StrategyMesh, 1, nil)
		if err != nil {
			b.Fatal(err)
		}
		events += r.Events
		last = 0
		for _, x := range r.Installed {
			last = max(last, x)
		}
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(last, "simulated-s")
	b.ReportMetric(float64(sc.Fleet.Devices), "devices")
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB")
	}
}
