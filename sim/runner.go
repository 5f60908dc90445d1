package sim

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Options control a study: repeats with different random seeds and
// sweeps over scenario keys.
type Options struct {
	Seed uint64 // the first run's random seed; run k uses Seed+k
	Runs int    // repeats per variant (default 1)
	// Sets sweep keys: "sites.uplink=2Mbit,10Mbit" runs every value; several
	// Sets run the cross product.
	Sets []string
	// Progress, if set, hears how far the current simulation is.
	Progress func(variant string, run, runs int, strategy string, done, total int)
}

// Run is one simulated run of a variant: the strategy's result and a
// central server's, with their summary.
type Run struct {
	Summary Summary
	Mesh    *Result // nil for the central strategy
	Central *Result
	Wall    time.Duration
}

// Stat is a mean over runs with the half-width of its 95% confidence
// interval (Student's t).
type Stat struct {
	Mean Num `json:"mean"`
	CI95 Num `json:"ci95"`
}

// Aggregate is the mean of the headline figures over a variant's runs.
type Aggregate struct {
	Runs         int  `json:"runs"`
	P50          Stat `json:"p50_s"`
	P95          Stat `json:"p95_s"`
	P99          Stat `json:"p99_s"`
	P100         Stat `json:"p100_s"`
	SeedCopies   Stat `json:"seed_copies"`
	VsBound      Stat `json:"vs_bound"`
	CentralP100  Stat `json:"central_p100_s"`
	CentralVsMax Stat `json:"central_vs_analytic"`
}

// Variant is one point of a sweep (or the only one) and its runs.
type Variant struct {
	Label     string // the sweep's key=value settings; "" without a sweep
	Overrides []string
	Scenario  *Scenario
	Runs      []Run
	Aggregate Aggregate
}

// Study runs every variant of the scenario file data (nil: the default
// scenario) Runs times.
func Study(ctx context.Context, data []byte, o Options) ([]*Variant, error) {
	if o.Runs < 1 {
		o.Runs = 1
	}
	combos, err := expandSets(o.Sets)
	if err != nil {
		return nil, err
	}
	var out []*Variant
	for _, overrides := range combos {
		sc, err := ParseScenario(data, overrides) // nil data: the default scenario
		if err != nil {
			return nil, err
		}
		v := &Variant{Label: strings.Join(overrides, " "), Overrides: overrides, Scenario: sc}
		// Runs are independent: one per core at a time, kept in seed order
		// so the output does not depend on scheduling.
		v.Runs = make([]Run, o.Runs)
		var mu sync.Mutex
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(max(1, runtime.GOMAXPROCS(0)/2)) // each run is two simulations (each parallel too: windows.go)
		for k := range o.Runs {
			g.Go(func() error {
				run, err := simulateBoth(gctx, sc, o.Seed+uint64(k), func(strategy string, done, total int) {
					if o.Progress != nil {
						mu.Lock()
						o.Progress(v.Label, k+1, o.Runs, strategy, done, total)
						mu.Unlock()
					}
				})
				if err != nil {
					return err
				}
				v.Runs[k] = *run
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		v.Aggregate = aggregate(v.Runs)
		out = append(out, v)
	}
	return out, nil
}

// simulateBoth runs the scenario's strategy and, for comparison, a
// central server (the central run is the whole answer for "central"), the
// two at once.
func simulateBoth(ctx context.Context, sc *Scenario, seed uint64, progress func(string, int, int)) (*Run, error) {
	t0 := time.Now()
	run := &Run{}
	g, gctx := errgroup.WithContext(ctx)
	if sc.Strategy == StrategyMesh {
		g.Go(func() error {
			r, err := Simulate(gctx, sc, StrategyMesh, seed, func(d, t int) { progress(StrategyMesh, d, t) })
			run.Mesh = r
			return err
		})
	}
	var centralProgress Progress // the bar follows the scenario's own strategy
	if sc.Strategy == StrategyCentral {
		centralProgress = func(d, t int) { progress(StrategyCentral, d, t) }
	}
	g.Go(func() error {
		r, err := Simulate(gctx, sc, StrategyCentral, seed, centralProgress)
		run.Central = r
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	b := run.Central.Bound
	if run.Mesh != nil {
		ms := summarize(sc, run.Mesh, run.Mesh.Bound)
		run.Summary.Mesh = &ms
	}
	r := run.Central
	run.Summary.Central = summarize(sc, r, b)
	run.Summary.Scenario = sc.Name
	run.Summary.Seed = seed
	run.Summary.Devices, run.Summary.Sites, run.Summary.Chunks = r.Devices, r.Sites, r.Chunks
	run.Summary.ReleaseBytes = int64(sc.Release.Size)
	run.Summary.Bound = b
	run.Summary.CentralVsAnalytic = run.Summary.Central.Completion.P100 / Num(b.Central)
	run.Wall = time.Since(t0)
	return run, nil
}

// expandSets turns ["a=1,2", "b=x,y"] into the cross product
// [[a=1 b=x] [a=1 b=y] [a=2 b=x] [a=2 b=y]].
func expandSets(sets []string) ([][]string, error) {
	combos := [][]string{nil}
	for _, set := range sets {
		key, vals, ok := strings.Cut(set, "=")
		if !ok || strings.TrimSpace(key) == "" || vals == "" {
			return nil, fmt.Errorf("%w: --set %q: want key=v1,v2 (one or more values)", ErrInvalid, set)
		}
		var next [][]string
		for _, c := range combos {
			for _, v := range splitValues(vals) {
				next = append(next, append(append([]string(nil), c...), strings.TrimSpace(key)+"="+v))
			}
		}
		combos = next
	}
	return combos, nil
}

// splitValues splits on commas outside quotes and brackets.
func splitValues(s string) []string {
	var out []string
	depth, quoted, startAt := 0, false, 0
	for i, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case quoted:
		case r == '[':
			depth++
		case r == ']':
			depth--
		case r == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[startAt:i]))
			startAt = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[startAt:]))
}

func aggregate(runs []Run) Aggregate {
	stat := func(get func(Summary) float64) Stat {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = get(r.Summary)
		}
		mean, ci := meanCI95(xs)
		return Stat{Mean: Num(mean), CI95: Num(ci)}
	}
	primary := func(s Summary) *StrategySummary {
		if s.Mesh != nil {
			return s.Mesh
		}
		return &s.Central
	}
	return Aggregate{
		Runs:         len(runs),
		P50:          stat(func(s Summary) float64 { return float64(primary(s).Completion.P50) }),
		P95:          stat(func(s Summary) float64 { return float64(primary(s).Completion.P95) }),
		P99:          stat(func(s Summary) float64 { return float64(primary(s).Completion.P99) }),
		P100:         stat(func(s Summary) float64 { return float64(primary(s).Completion.P100) }),
		SeedCopies:   stat(func(s Summary) float64 { return primary(s).SeedCopies }),
		VsBound:      stat(func(s Summary) float64 { return float64(primary(s).VsBound) }),
		CentralP100:  stat(func(s Summary) float64 { return float64(s.Central.Completion.P100) }),
		CentralVsMax: stat(func(s Summary) float64 { return float64(s.CentralVsAnalytic) }),
	}
}

// meanCI95 is the mean of xs and the half-width of its 95% confidence
// interval (Student's t); NaN for the interval with fewer than two.
func meanCI95(xs []float64) (mean, ci float64) {
	n := float64(len(xs))
	for _, x := range xs {
		mean += x
	}
	mean /= n
	if len(xs) < 2 {
		return mean, math.NaN()
	}
	ss := 0.0
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, tQuantile975(len(xs)-1) * math.Sqrt(ss/(n-1)) / math.Sqrt(n)
}

// tQuantile975 is Student's t 97.5% quantile for df degrees of freedom.
func tQuantile975(df int) float64 {
	table := []float64{0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
		2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}
	if df < len(table) {
		return table[df]
	}
	return 1.96 + 2.4/float64(df) // within 0.3% of the exact value beyond 30
}
