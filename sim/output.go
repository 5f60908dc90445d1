package sim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// WriteTable prints the variants as a table for a terminal.
func WriteTable(w io.Writer, vs []*Variant) {
	for _, v := range vs {
		sc := v.Scenario
		first := v.Runs[0].Summary
		fmt.Fprintf(w, "scenario: %s", sc.Name)
		if v.Label != "" {
			fmt.Fprintf(w, " [%s]", v.Label)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  %d devices in %d sites; release %v in %d chunks; seed uplink %v, site downlink %v; %d run(s) from seed %d\n",
			first.Devices, first.Sites, sc.Release.Size, first.Chunks, sc.Seed.Uplink, sc.Sites.Downlink, len(v.Runs), first.Seed)
		cols := []string{}
		if first.Mesh != nil {
			cols = append(cols, StrategyMesh)
		}
		cols = append(cols, StrategyCentral)
		fmt.Fprintf(w, "  %-26s", "")
		for _, c := range cols {
			fmt.Fprintf(w, "%22s", c)
		}
		fmt.Fprintln(w)
		get := func(c string, f func(StrategySummary) float64) []float64 {
			var xs []float64
			for _, r := range v.Runs {
				s := r.Summary.Central
				if c == StrategyMesh {
					s = *r.Summary.Mesh
				}
				xs = append(xs, f(s))
			}
			return xs
		}
		row := func(name string, f func(StrategySummary) float64, format func(float64) string) {
			fmt.Fprintf(w, "  %-26s", name)
			for _, c := range cols {
				fmt.Fprintf(w, "%22s", meanCI(get(c, f), format))
			}
			fmt.Fprintln(w)
		}
		secs := func(x float64) string { return formatSeconds(x) }
		row("50% installed", func(s StrategySummary) float64 { return float64(s.Completion.P50) }, secs)
		row("95% installed", func(s StrategySummary) float64 { return float64(s.Completion.P95) }, secs)
		row("99% installed", func(s StrategySummary) float64 { return float64(s.Completion.P99) }, secs)
		row("100% installed", func(s StrategySummary) float64 { return float64(s.Completion.P100) }, secs)
		row("seed egress (copies)", func(s StrategySummary) float64 { return s.SeedCopies }, func(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) })
		row("seed copies per site", func(s StrategySummary) float64 { return s.SeedCopiesPerSite }, func(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) })
		row("bytes between devices", func(s StrategySummary) float64 { return s.PeerBytes }, formatBytes)
		row("corrupt bytes received", func(s StrategySummary) float64 { return s.WastedBytes }, formatBytes)
		row("100% vs lower bound", func(s StrategySummary) float64 { return float64(s.VsBound) }, func(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) + "x" })
		b := first.Bound
		fmt.Fprintf(w, "  lower bound (Kumar & Ross, with sites): %s = max(seed %s, device %s, fleet %s, site %s, all sites %s, last stage %s)\n",
			formatSeconds(b.Time), formatSeconds(b.Seed), formatSeconds(b.Device), formatSeconds(b.Fleet), formatSeconds(b.Site), formatSeconds(b.Sites), formatSeconds(b.Stage))
		fmt.Fprintf(w, "  central server, analytic: %s; simulated/analytic %s\n", formatSeconds(b.Central), meanCI(func() []float64 {
			var xs []float64
			for _, r := range v.Runs {
				xs = append(xs, float64(r.Summary.CentralVsAnalytic))
			}
			return xs
		}(), func(x float64) string { return strconv.FormatFloat(x, 'f', 3, 64) }))
		fmt.Fprintln(w)
	}
}

func meanCI(xs []float64, format func(float64) string) string {
	mean, ci := meanCI95(xs)
	switch {
	case math.IsNaN(mean):
		return "never"
	case math.IsNaN(ci):
		return format(mean)
	}
	return format(mean) + " ±" + format(ci)
}

func formatSeconds(s float64) string {
	switch {
	case math.IsNaN(s):
		return "never"
	case s >= 3600:
		return strconv.FormatFloat(s/3600, 'f', 2, 64) + "h"
	case s >= 120:
		return strconv.FormatFloat(s/60, 'f', 1, 64) + "m"
	}
	return strconv.FormatFloat(s, 'f', 2, 64) + "s"
}

func formatBytes(b float64) string {
	switch {
	case b >= 1<<40:
		return strconv.FormatFloat(b/(1<<40), 'f', 2, 64) + " TiB"
	case b >= 1<<30:
		return strconv.FormatFloat(b/(1<<30), 'f', 2, 64) + " GiB"
	case b >= 1<<20:
		return strconv.FormatFloat(b/(1<<20), 'f', 1, 64) + " MiB"
	}
	return strconv.FormatFloat(b, 'f', 0, 64) + " B"
}

// WriteFiles writes each variant's summary.json, timeseries.csv,
// devices.csv and plots into dir (a subdirectory per variant when there
// are several, and sweep.csv beside them). The files depend only on the
// scenario, the options and the seed: the same inputs give the same bytes.
func WriteFiles(dir string, vs []*Variant) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if len(vs) > 1 {
		if err := writeSweep(filepath.Join(dir, "sweep.csv"), vs); err != nil {
			return err
		}
	}
	for k, v := range vs {
		d := dir
		if len(vs) > 1 {
			d = filepath.Join(dir, fmt.Sprintf("%03d_%s", k+1, sanitize(v.Label)))
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		if err := writeVariant(d, v); err != nil {
			return err
		}
	}
	return nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '=':
			return r
		}
		return '_'
	}, s)
}

func writeVariant(dir string, v *Variant) error {
	doc := struct {
		Label     string    `json:"variant,omitempty"`
		Scenario  *Scenario `json:"scenario"`
		Aggregate Aggregate `json:"aggregate"`
		Runs      []Summary `json:"runs"`
	}{Label: v.Label, Scenario: v.Scenario, Aggregate: v.Aggregate}
	for _, r := range v.Runs {
		doc.Runs = append(doc.Runs, r.Summary)
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	first := v.Runs[0]
	if err := writeCSV(filepath.Join(dir, "timeseries.csv"), func(w *bufio.Writer) {
		w.WriteString("strategy,t_s,installed,seed_bytes,peer_bytes,corrupt_bytes\n")
		for _, r := range []*Result{first.Mesh, first.Central} {
			if r == nil {
				continue
			}
			for _, x := range r.Series {
				fmt.Fprintf(w, "%s,%s,%d,%.0f,%.0f,%.0f\n", r.Strategy, fnum(x.T), x.Installed, x.BytesSeed, x.BytesPeers, x.BytesWasted)
			}
		}
	}); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, "devices.csv"), func(w *bufio.Writer) {
		w.WriteString("device,in_rollout,mesh_installed_s,mesh_seed_bytes,mesh_peer_bytes,central_installed_s\n")
		c := first.Central
		for i := range c.Installed {
			m, ms, mp := "", "", ""
			if first.Mesh != nil {
				m, ms, mp = fnumOrEmpty(first.Mesh.Installed[i]), fmt.Sprintf("%.0f", first.Mesh.BySeed[i]), fmt.Sprintf("%.0f", first.Mesh.ByPeers[i])
			}
			fmt.Fprintf(w, "%d,%t,%s,%s,%s,%s\n", i, c.Eligible[i], m, ms, mp, fnumOrEmpty(c.Installed[i]))
		}
	}); err != nil {
		return err
	}
	return writePlots(dir, v)
}

func fnum(x float64) string { return strconv.FormatFloat(x, 'f', 6, 64) }

func fnumOrEmpty(x float64) string {
	if x < 0 {
		return ""
	}
	return fnum(x)
}

func writeCSV(path string, fill func(*bufio.Writer)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fill(w)
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeSweep(path string, vs []*Variant) error {
	return writeCSV(path, func(w *bufio.Writer) {
		w.WriteString("variant,runs,p50_s,p95_s,p99_s,p100_s,p100_ci95,seed_copies,vs_bound,central_p100_s\n")
		for _, v := range vs {
			a := v.Aggregate
			fmt.Fprintf(w, "%q,%d,%s,%s,%s,%s,%s,%s,%s,%s\n", v.Label, a.Runs, numCSV(a.P50.Mean), numCSV(a.P95.Mean), numCSV(a.P99.Mean),
				numCSV(a.P100.Mean), numCSV(a.P100.CI95), numCSV(a.SeedCopies.Mean), numCSV(a.VsBound.Mean), numCSV(a.CentralP100.Mean))
		}
	})
}

func numCSV(n Num) string {
	if math.IsNaN(float64(n)) {
		return ""
	}
	return strconv.FormatFloat(float64(n), 'f', 6, 64)
}
