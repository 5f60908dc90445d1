package sim

import (
	"math"
	"testing"
)

// TestSeedMessagesTakeTheWANLatency checks the seed's answers on one
// device fetching one chunk: its block list request and its wants each
// take the one-way latency L to reach the seed, and the chunk reaches it
// L after the seed sent its last byte, so it installs at 4L + size/rate.
// This delay is the lookahead of the parallel run.
func TestSeedMessagesTakeTheWANLatency(t *testing.T) {
	cases := []struct {
		seed, site, lan string
		oneWay          float64
	}{
		{"5ms", "20ms", "1ms", 0.026},
		{"50ms", "0ms", "2ms", 0.052},
		{"0ms", "100ms", "0ms", 0.100},
	}
	for _, c := range cases {
		sc := small(t, "fleet.devices=1", `sites.size_dist="fixed"`, "sites.size=1", "release.size=256KiB",
			"sites.downlink=8Mbit", "gossip.hop_latency=0s",
			"seed.latency="+c.seed, "sites.latency="+c.site, "sites.lan_latency="+c.lan)
		for _, st := range []string{StrategyMesh, StrategyCentral} {
			r := simulate(t, sc, st, 1)
			want := 4*c.oneWay + 256*1024/1e6
			if got := r.Installed[0]; math.Abs(got-want) > 1e-9 {
				t.Errorf("%s, latencies %s %s %s: installed at %.6fs, want 4L + size/rate = %.6fs", st, c.seed, c.site, c.lan, got, want)
			}
		}
	}
}
