package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// progress draws a bar on a terminal and prints a plain line at every
// quarter otherwise (logs and CI output stay readable).
type progress struct {
	w        io.Writer
	tty      bool
	total    uint64
	label    string
	last     time.Time
	quarters int
}

func newProgress(w io.Writer, label string, total uint64) *progress {
	return &progress{w: w, tty: isTerminal(w), total: max(total, 1), label: label}
}

// isTerminal tells whether w is a terminal (progress bars redraw in place).
func isTerminal(w io.Writer) bool {
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil {
			return fi.Mode()&os.ModeCharDevice != 0
		}
	}
	return false
}

func (p *progress) update(done uint64) {
	frac := min(float64(done)/float64(p.total), 1)
	if p.tty {
		if time.Since(p.last) < 100*time.Millisecond && done < p.total {
			return
		}
		p.last = time.Now()
		const width = 30
		n := int(frac * width)
		fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%% %s / %s", p.label, strings.Repeat("#", n), strings.Repeat(".", width-n),
			100*frac, humanBytes(done), humanBytes(p.total))
		return
	}
	for q := p.quarters + 1; q <= 4 && frac >= float64(q)/4; q++ {
		p.quarters = q
		fmt.Fprintf(p.w, "%s: %d%% (%s of %s)\n", p.label, 25*q, humanBytes(done), humanBytes(p.total))
	}
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

// treeSize sums the sizes of the regular files under path (or of path).
func treeSize(path string) uint64 {
	var total uint64
	filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				total += uint64(fi.Size())
			}
		}
		return nil
	})
	return total
}
