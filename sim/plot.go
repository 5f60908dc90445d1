package sim

import (
	"image/color"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var strategyColor = map[string]color.Color{
	StrategyMesh:    color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	StrategyCentral: color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

// writePlots draws the completion CDF (mesh vs central) and the seed's
// egress over time, each as SVG and PNG.
func writePlots(dir string, v *Variant) error {
	first := v.Runs[0]
	results := []*Result{first.Mesh, first.Central}

	cdf := plot.New()
	cdf.Title.Text = "Devices running the release"
	cdf.X.Label.Text = "time since publish (s)"
	cdf.Y.Label.Text = "share of the rollout"
	cdf.Y.Min, cdf.Y.Max = 0, 1
	cdf.Add(plotter.NewGrid())
	for _, r := range results {
		if r == nil {
			continue
		}
		var times []float64
		eligible := 0
		for i, t := range r.Installed {
			if r.Eligible[i] {
				eligible++
				if t >= 0 {
					times = append(times, t)
				}
			}
		}
		slices.Sort(times)
		pts := plotter.XYs{{X: 0, Y: 0}}
		step := max(1, len(times)/2000)
		for k := 0; k < len(times); k += step {
			pts = append(pts, plotter.XY{X: times[k], Y: float64(k+1) / float64(eligible)})
		}
		if n := len(times); n > 0 {
			pts = append(pts, plotter.XY{X: times[n-1], Y: float64(n) / float64(eligible)})
		}
		if err := addLine(cdf, r.Strategy, pts); err != nil {
			return err
		}
	}
	if err := save(cdf, dir, "completion_cdf"); err != nil {
		return err
	}

	egress := plot.New()
	egress.Title.Text = "Seed egress"
	egress.X.Label.Text = "time since publish (s)"
	egress.Y.Label.Text = "Mbit/s"
	egress.Add(plotter.NewGrid())
	for _, r := range results {
		if r == nil {
			continue
		}
		var pts plotter.XYs
		for k := 1; k < len(r.Series); k++ {
			a, b := r.Series[k-1], r.Series[k]
			if dt := b.T - a.T; dt > 0 {
				pts = append(pts, plotter.XY{X: b.T, Y: (b.BytesSeed - a.BytesSeed) * 8 / dt / 1e6})
			}
		}
		if step := len(pts) / 2000; step > 1 {
			thin := pts[:0]
			for k := 0; k < len(pts); k += step {
				thin = append(thin, pts[k])
			}
			pts = thin
		}
		if len(pts) == 0 {
			continue
		}
		if err := addLine(egress, r.Strategy, pts); err != nil {
			return err
		}
	}
	return save(egress, dir, "seed_egress")
}

func addLine(p *plot.Plot, name string, pts plotter.XYs) error {
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	l.Color = strategyColor[name]
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(name, l)
	p.Legend.Top = true
	return nil
}

func save(p *plot.Plot, dir, name string) error {
	for _, ext := range []string{".svg", ".png"} {
		if err := p.Save(7*vg.Inch, 4*vg.Inch, filepath.Join(dir, name+ext)); err != nil {
			return err
		}
	}
	return nil
}
