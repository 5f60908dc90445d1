package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/meshota/meshota/sim"
)

func init() {
	c := &command{
		Name:    "sim",
		Summary: "simulate a rollout to a large fleet (mesh vs a central server)",
		Usage: `Usage: meshota sim [flags] [SCENARIO]

Simulates a rollout with the flow-level fleet simulator and compares
meshota's mesh with a central server. SCENARIO is a scenario file (TOML,
see docs/SIMULATOR.md) or the name of a shipped example; without one a
default 1,000-device fleet runs in seconds.

Examples:
  meshota sim
  meshota sim retail --runs 5 --out results/retail
  meshota sim office --set fleet.devices=20,200,2000 --set strategy=mesh
  meshota sim my-fleet.toml --seed 7`,
	}
	c.Run = func(ctx context.Context, e *env, args []string) error { return runSim(ctx, c, e, args) }
	register(c)
}

// setFlags collects repeated --set flags.
type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, " ") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

func runSim(ctx context.Context, c *command, e *env, args []string) error {
	fs := newFlagSet(c, e)
	seed := fs.Uint64("seed", 1, "random seed of the first run")
	runs := fs.Int("runs", 1, "repeat with this many seeds and report means with 95% confidence intervals")
	out := fs.String("out", "", "write summary.json, timeseries.csv, devices.csv and plots (SVG, PNG) into this directory")
	list := fs.Bool("list", false, "list the shipped example scenarios")
	var sets setFlags
	fs.Var(&sets, "set", "override a scenario key, KEY=V1,V2: several values sweep, several --set run the cross product (e.g. sites.uplink=2Mbit,10Mbit)")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if *list {
		for _, name := range sim.Examples() {
			fmt.Fprintln(e.Stdout, name)
		}
		return nil
	}
	if *runs < 1 || *runs > 1000 {
		return fmt.Errorf("%w: --runs %d: want 1 to 1000", errUsage, *runs)
	}
	var data []byte
	switch fs.NArg() {
	case 0:
	case 1:
		name := fs.Arg(0)
		if ex, ok := sim.Example(name); ok {
			data = ex
		} else {
			d, err := os.ReadFile(name)
			if err != nil {
				return fmt.Errorf("scenario %q is neither a file nor a shipped example (%s): %w", name, strings.Join(sim.Examples(), ", "), err)
			}
			data = d
		}
	default:
		return fmt.Errorf("%w: one scenario at most", errUsage)
	}
	bar := newSimProgress(e.Stderr)
	t0 := time.Now()
	vs, err := sim.Study(ctx, data, sim.Options{Seed: *seed, Runs: *runs, Sets: sets, Progress: bar.update})
	bar.done()
	if err != nil {
		if errors.Is(err, sim.ErrInvalid) || errors.Is(err, sim.ErrUnknownKey) {
			return fmt.Errorf("%w (fix the scenario or the --set flag)", err)
		}
		return err
	}
	sim.WriteTable(e.Stdout, vs)
	var events uint64
	var simWall time.Duration
	for _, v := range vs {
		for _, r := range v.Runs {
			if r.Mesh != nil {
				events += r.Mesh.Events
				simWall += r.Mesh.Wall
			}
			events += r.Central.Events
			simWall += r.Central.Wall
		}
	}
	fmt.Fprintf(e.Stderr, "simulated %d events in %v (%.2g events/s)\n", events, time.Since(t0).Round(time.Millisecond), float64(events)/simWall.Seconds())
	if *out != "" {
		if err := sim.WriteFiles(*out, vs); err != nil {
			return fmt.Errorf("writing results: %w", err)
		}
		fmt.Fprintf(e.Stdout, "results in %s\n", *out)
	}
	return nil
}

// simProgress draws one bar per simulation on a terminal, and nothing
// otherwise (the summary follows).
type simProgress struct {
	w    io.Writer
	tty  bool
	last time.Time
	line bool
}

func newSimProgress(w io.Writer) *simProgress {
	return &simProgress{w: w, tty: isTerminal(w)}
}

func (p *simProgress) update(variant string, run, runs int, strategy string, done, total int) {
	if !p.tty || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	const width = 30
	frac := float64(done) / float64(max(total, 1))
	n := int(frac * width)
	label := strategy
	if runs > 1 {
		label = fmt.Sprintf("%s run %d/%d", strategy, run, runs)
	}
	if variant != "" {
		label = variant + " " + label
	}
	fmt.Fprintf(p.w, "\r\033[K%s [%s%s] %3.0f%% of %d devices", label, strings.Repeat("#", n), strings.Repeat(".", width-n), 100*frac, total)
	p.line = true
}

func (p *simProgress) done() {
	if p.line {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
