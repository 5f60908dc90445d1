package sim

import (
	"math"
	"slices"
	"strconv"
)

// Completion holds the times, in seconds, at which shares of the devices
// in the rollout had installed the release; NaN when that share never did.
type Completion struct {
	P50  Num `json:"p50"`
	P95  Num `json:"p95"`
	P99  Num `json:"p99"`
	P100 Num `json:"p100"`
}

// Num is a float that encodes NaN (a share never reached) as JSON null.
type Num float64

// MarshalJSON implements json.Marshaler.
func (n Num) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(n), 'g', 10, 64), nil
}

// StrategySummary sums up one strategy's run.
type StrategySummary struct {
	Strategy    string     `json:"strategy"`
	Eligible    int        `json:"eligible"`
	Installed   int        `json:"installed"`
	Completion  Completion `json:"completion_s"`
	SeedBytes   float64    `json:"seed_bytes"`
	PeerBytes   float64    `json:"peer_bytes"`
	WastedBytes float64    `json:"wasted_bytes"`
	// SeedCopies is the seed's egress in copies of the release.
	SeedCopies float64 `json:"seed_copies"`
	// SeedCopiesPerSite is SeedCopies divided by the number of sites.
	SeedCopiesPerSite float64 `json:"seed_copies_per_site"`
	// VsBound is the 100% completion time over the lower bound.
	VsBound Num    `json:"vs_bound"`
	Events  uint64 `json:"events"`
}

// Summary is one run of a scenario: meshota's strategy beside a central
// server, and the analytic figures.
type Summary struct {
	Scenario     string           `json:"scenario"`
	Seed         uint64           `json:"seed"`
	Devices      int              `json:"devices"`
	Sites        int              `json:"sites"`
	Chunks       int              `json:"chunks"`
	ReleaseBytes int64            `json:"release_bytes"`
	Bound        Bound            `json:"lower_bound_s"`
	Mesh         *StrategySummary `json:"mesh,omitempty"`
	Central      StrategySummary  `json:"central"`
	// CentralVsAnalytic is the simulated central time over Bound.Central.
	CentralVsAnalytic Num `json:"central_vs_analytic"`
}

func summarize(sc *Scenario, r *Result, b Bound) StrategySummary {
	var times []float64
	eligible := 0
	for i, t := range r.Installed {
		if !r.Eligible[i] {
			continue
		}
		eligible++
		if t >= 0 {
			times = append(times, t)
		}
	}
	slices.Sort(times)
	pct := func(p float64) Num { return Num(Percentile(times, eligible, p)) }
	F := float64(sc.Release.Size)
	out := StrategySummary{
		Strategy: r.Strategy, Eligible: eligible, Installed: len(times),
		Completion: Completion{P50: pct(0.50), P95: pct(0.95), P99: pct(0.99), P100: pct(1)},
		SeedBytes:  r.BytesSeed, PeerBytes: r.BytesPeers, WastedBytes: r.BytesWasted,
		SeedCopies: r.BytesSeed / F, SeedCopiesPerSite: r.BytesSeed / F / float64(r.Sites),
		Events: r.Events,
	}
	out.VsBound = out.Completion.P100 / Num(b.Time)
	return out
}

// Percentile is the time by which a share p of n devices had installed,
// given the sorted install times of those that did; NaN when fewer did.
func Percentile(sorted []float64, n int, p float64) float64 {
	k := max(int(math.Ceil(p*float64(n)))-1, 0)
	if k >= len(sorted) {
		return math.NaN()
	}
	return sorted[k]
}
