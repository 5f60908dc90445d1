package sim

import (
	"context"
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	sc := DefaultScenario()
	sc.Fleet.Devices = 1000
	sc.Sites.Downlink = 1e9
	sc.MaxTime = Duration(10000 * time.Second)
	for _, st := range []string{StrategyMesh, StrategyCentral} {
		r, err := Simulate(context.Background(), sc, st, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		mx := 0.0
		for _, x := range r.Installed {
			if x >= 0 {
				n++
				mx = max(mx, x)
			}
		}
		t.Logf("%s: installed %d/%d last %.1fs end %.1f seed %.1f MiB peers %.1f MiB events %d wall %v bound %+v", st, n, r.Devices, mx, r.End, r.BytesSeed/(1<<20), r.BytesPeers/(1<<20), r.Events, r.Wall, LowerBound(sc))
	}
}
