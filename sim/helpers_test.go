package sim

import (
	"context"
	"testing"
)

// small is a fast scenario with every feature switched on.
func small(t *testing.T, overrides ...string) *Scenario {
	t.Helper()
	base := `
name = "test"
[fleet]
devices = 300
[sites]
size_dist = "uniform"
size_min = 5
size_max = 30
downlink = "20Mbit"
uplink = "5Mbit"
latency = "20ms"
lan_latency = "1ms"
[release]
size = "8MiB"
chunk = "256KiB"
`
	sc, err := ParseScenario([]byte(base), overrides)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func simulate(t *testing.T, sc *Scenario, strategy string, seed uint64) *Result {
	t.Helper()
	r, err := Simulate(context.Background(), sc, strategy, seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func lastInstall(r *Result) float64 {
	last := -1.0
	for i, x := range r.Installed {
		if r.Eligible[i] {
			if x < 0 {
				return -1
			}
			last = max(last, x)
		}
	}
	return last
}
