package sim

import (
	"context"
	"runtime"
	"testing"
)

func TestNational(t *testing.T) {
	sc, err := LoadScenario(nil, "scenarios/national.toml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Simulate(context.Background(), sc, StrategyMesh, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mx := 0.0
	for _, x := range r.Installed {
		mx = max(mx, x)
	}
	t.Logf("sites %d last %.1fs seed %.0f MiB events %d wall %v ev/s %.0f heap sys %d MiB bound %+v", r.Sites, mx, r.BytesSeed/(1<<20), r.Events, r.Wall, float64(r.Events)/r.Wall.Seconds(), ms.Sys>>20, LowerBound(sc))
}
