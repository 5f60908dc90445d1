package sim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ByteSize is a number of bytes, written in scenarios as "256KiB",
// "100MiB", "1GB" or a plain integer.
type ByteSize int64

// Rate is a link capacity in bytes per second, written in scenarios in
// bits as networks are ("2Mbit", "100Mbit", "1Gbit") or in bytes ("10MB/s").
type Rate float64

// Duration is a time span written as Go writes them ("20ms", "1h30m").
type Duration time.Duration

var sizeUnits = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

func parseScaled(s string, units []struct {
	suffix string
	mult   float64
}) (float64, bool) {
	s = strings.TrimSpace(s)
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err != nil {
				return 0, false
			}
			return v * u.mult, true
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, ok := parseScaled(string(text), sizeUnits)
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("size %q: want a number of bytes such as 256KiB, 100MiB or 1GB", text)
	}
	if v < 0 {
		return fmt.Errorf("size %q is negative", text)
	}
	*b = ByteSize(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

func (b ByteSize) String() string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", b>>30)
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", b>>10)
	}
	return fmt.Sprintf("%dB", int64(b))
}

var rateUnits = []struct {
	suffix string
	mult   float64
}{
	{"Kbit", 1e3 / 8}, {"Mbit", 1e6 / 8}, {"Gbit", 1e9 / 8}, {"bit", 1.0 / 8},
	{"KiB/s", 1 << 10}, {"MiB/s", 1 << 20}, {"GiB/s", 1 << 30},
	{"KB/s", 1e3}, {"MB/s", 1e6}, {"GB/s", 1e9}, {"B/s", 1},
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Rate) UnmarshalText(text []byte) error {
	v, ok := parseScaled(string(text), rateUnits)
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) || !strings.ContainsAny(string(text), "bB") {
		return fmt.Errorf("rate %q: want a rate with its unit, such as 2Mbit, 1Gbit or 10MB/s", text)
	}
	if v < 0 {
		return fmt.Errorf("rate %q is negative", text)
	}
	*r = Rate(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

func (r Rate) String() string {
	bits := float64(r) * 8
	switch {
	case bits >= 1e9:
		return strconv.FormatFloat(bits/1e9, 'g', 4, 64) + "Gbit"
	case bits >= 1e6:
		return strconv.FormatFloat(bits/1e6, 'g', 4, 64) + "Mbit"
	}
	return strconv.FormatFloat(bits/1e3, 'g', 4, 64) + "Kbit"
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(text)))
	if err != nil {
		return fmt.Errorf("duration %q: want a duration such as 20ms, 10m or 2h", text)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", text)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Seconds is the duration in seconds, the simulator's time unit.
func (d Duration) Seconds() float64 { return time.Duration(d).Seconds() }

func (d Duration) String() string { return time.Duration(d).String() }
