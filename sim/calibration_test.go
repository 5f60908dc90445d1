package sim_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/meshota/meshota/sim"
	"github.com/meshota/meshota/sim/emulate"
)

// mirror is the flow-level scenario of an emulated one: mocknet gives each
// device its own link to the seed and to each LAN peer, so the seed's
// uplink and the sites' downlinks are unlimited and the links become
// per-transfer caps (seed.link, devices.downlink).
func mirror(spec emulate.Spec) *sim.Scenario {
	sc := sim.DefaultScenario()
	sc.Name = "calibration"
	n := 0
	for _, k := range spec.Sites {
		n += k
	}
	sc.Fleet.Devices = n
	sc.Sites.Size, sc.Sites.SizeDist = spec.Sites[0], "fixed"
	sc.Sites.Downlink, sc.Sites.Uplink = 1e12, 1e12
	sc.Sites.Latency = 0
	sc.Sites.LANLatency = sim.Duration(spec.LANLink.Latency)
	sc.Seed.Uplink = 1e12
	sc.Seed.Link = sim.Rate(spec.SeedLink.Bandwidth)
	sc.Seed.Latency = sim.Duration(spec.SeedLink.Latency)
	sc.Devices.Uplink = 1e12
	sc.Devices.Downlink = sim.Rate(spec.LANLink.Bandwidth)
	sc.Release.Size = sim.ByteSize(spec.ReleaseBytes)
	sc.Gossip.HopLatency = sim.Duration(spec.SeedLink.Latency)
	return sc
}

func percentiles(xs []float64) [3]float64 {
	slices.Sort(xs)
	at := func(p float64) float64 { return xs[max(0, int(math.Ceil(p*float64(len(xs))))-1)] }
	return [3]float64{at(0.5), at(0.95), at(1)}
}

// TestCalibrationAgainstEmulation runs one small rollout at both levels,
// the flow simulator and real agents over mocknet, and checks that the
// completion times agree within 25% (issue 7). The links are slow enough
// that transfers, not the machine's CPU, set the times.
func TestCalibrationAgainstEmulation(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real nodes for several seconds")
	}
	spec := emulate.Spec{
		Sites:        []int{4, 4},
		ReleaseBytes: 3 << 20,
		SeedLink:     emulate.Link{Bandwidth: 400e3, Latency: 10 * time.Millisecond},
		LANLink:      emulate.Link{Bandwidth: 4e6, Latency: time.Millisecond},
		Seed:         1,
		Timeout:      3 * time.Minute,
	}
	er, err := emulate.Run(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	var emu []float64
	for i, d := range er.Installed {
		if d < 0 {
			t.Fatalf("emulated device %d never installed", i)
		}
		emu = append(emu, d.Seconds())
	}
	pe := percentiles(emu)

	sc := mirror(spec)
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	var ps [3]float64
	const runs = 5
	for seed := uint64(1); seed <= runs; seed++ {
		r, err := sim.Simulate(context.Background(), sc, sim.StrategyMesh, seed, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := percentiles(append([]float64(nil), r.Installed...))
		for k := range ps {
			ps[k] += p[k] / runs
		}
	}
	names := []string{"p50", "p95", "100%"}
	report := ""
	for k := range ps {
		report += fmt.Sprintf(" %s sim %.2fs emu %.2fs (%.2fx);", names[k], ps[k], pe[k], ps[k]/pe[k])
	}
	t.Logf("calibration:%s emulated seed bytes %.2f copies per site, CPU %v", report,
		float64(er.SeedBytes)/float64(spec.ReleaseBytes)/float64(len(spec.Sites)), er.CPU.Round(time.Millisecond))
	for k := range ps {
		if r := ps[k] / pe[k]; r < 0.75 || r > 1.25 {
			t.Errorf("%s: simulated %.2fs, emulated %.2fs: %.0f%% apart, more than 25%%", names[k], ps[k], pe[k], 100*math.Abs(r-1))
		}
	}
}
