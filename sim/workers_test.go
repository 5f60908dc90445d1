package sim

import (
	"context"
	"reflect"
	"testing"
)

// TestWorkersDoNotChangeTheOutput runs scenarios on 1 to 7 workers and
// checks that every result is the same, bit for bit: a site's events,
// random draws and messages do not depend on which worker simulates it
// nor on the others (windows.go), so --seed reproduces a run on any
// machine.
func TestWorkersDoNotChangeTheOutput(t *testing.T) {
	everything := small(t, "fleet.devices=400", "sites.loss=0.01", "release.previous_share=0.3", "release.reused=0.9",
		"churn.offline_share=0.1", "churn.mean_offline=10s", "malicious.share=0.05", `sites.size_dist="geometric"`, "sites.size=12")
	everything.Rollout = []Stage{{At: 0, Share: 0.2}, {At: Duration(20e9), Share: 1}}
	everything.Partitions = []Partition{{Sites: 0.2, From: Duration(1e9), To: Duration(15e9)}}
	cases := []struct {
		name string
		sc   *Scenario
	}{
		{"everything", everything},
		{"national shape", small(t, "fleet.devices=3000", "sites.size_min=1", "sites.size_max=40", "seed.uplink=200Mbit")},
		{"slots", small(t, "seed.slots=7", "churn.offline_share=0.2", "churn.mean_offline=5s")},
	}
	for _, c := range cases {
		for _, strategy := range []string{StrategyMesh, StrategyCentral} {
			var want *Result
			for _, workers := range []int{1, 2, 3, 7} {
				r, err := simulateOn(context.Background(), c.sc, strategy, 5, workers, nil)
				if err != nil {
					t.Fatal(err)
				}
				r.Wall = 0
				if want == nil {
					want = r
					continue
				}
				if !reflect.DeepEqual(r, want) {
					t.Errorf("%s %s: %d workers gave another result than 1 (events %d vs %d, end %v vs %v, seed bytes %v vs %v)",
						c.name, strategy, workers, r.Events, want.Events, r.End, want.End, r.BytesSeed, want.BytesSeed)
				}
			}
			if lastInstall(want) < 0 {
				t.Errorf("%s %s: not every device installed", c.name, strategy)
			}
		}
	}
}
