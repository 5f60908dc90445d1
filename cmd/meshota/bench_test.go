package main

// Benchmarks of the real binary in network namespaces (node/netlab): they
// need root and skip, saying why, without it. Each runs once per b.N
// iteration (go test's default benchtime gives N=1 for runs this long) and
// reports ratios against a bound or a baseline of the same run; the
// headline figures and their targets are in docs/PERFORMANCE.md.
// BENCH_QUICK=1 uses smaller releases.

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshota/meshota/node/netlab"
	"github.com/meshota/meshota/node/status"
)

func benchQuick() bool { return os.Getenv("BENCH_QUICK") != "" }

// BenchmarkTransferNetns (figure 3a): one agent fetches a release from one
// seed through a site link shaped to 20 Mbit/s each way by tc tbf (64 MiB,
// BENCH_QUICK 16 MiB). x-link is the agent's goodput (release bytes over its
// own time from accepting the manifest to running the release, assembly
// and switch included) against the link rate; x-tcp is that goodput against
// a plain TCP copy of the same bytes over the same link, measured first.
func BenchmarkTransferNetns(b *testing.B) {
	size := 64 << 20
	if benchQuick() {
		size = 16 << 20
	}
	const rate = 20 * netlab.Mbit
	var xLink, xTCP []float64
	for range b.N {
		l := newLab(b, labConfig{sites: 1, perSite: 1, siteLink: rate, timeout: 10 * time.Minute})
		dev := l.devs[0][0]
		tcp := l.tcpCopy(l.seed, dev.h, size)
		sum, src := l.bigRelease("1.0.0", size)
		l.startSeed("")
		l.startDevice(0, 0)
		time.Sleep(3 * time.Second) // connected and subscribed before the release
		l.push("1.0.0", src)
		l.waitRelease("1.0.0", sum, dev)
		took := l.installTook(0, 0, "1.0.0")
		goodput := float64(size) * 8 / took.Seconds()
		xLink = append(xLink, goodput/float64(rate))
		xTCP = append(xTCP, goodput/tcp)
		b.Logf("%d MiB through %d Mbit/s: agent %v (%.2f Mbit/s), plain TCP %.2f Mbit/s", size>>20, rate/netlab.Mbit, took.Round(time.Millisecond), goodput/1e6, tcp/1e6)
	}
	b.ReportMetric(median(xLink), "x-link")
	b.ReportMetric(median(xTCP), "x-tcp")
}

// BenchmarkFleetNetns (figure 4): a seed with a 50 Mbit/s uplink, two sites
// of eight agents behind 10 Mbit/s WAN links (each way), every agent's own
// link 100 Mbit/s down and, in two variants, 100 or 20 Mbit/s up; a 16 MiB
// release (BENCH_QUICK 4 MiB). x-bound is the time from the publish
// command's start, less its own publishing time, until the last agent runs
// the release, against the Kumar & Ross bound extended to sites
// (docs/SIMULATOR.md); x-size-per-site is the seed's egress against the
// release size times the number of sites.
func BenchmarkFleetNetns(b *testing.B) {
	for _, up := range []netlab.Rate{100 * netlab.Mbit, 20 * netlab.Mbit} {
		b.Run(fmt.Sprintf("device-up=%dMbit", up/netlab.Mbit), func(b *testing.B) {
			benchFleet(b, labConfig{sites: 2, perSite: 8, siteLink: 10 * netlab.Mbit, deviceUp: up, deviceDown: 100 * netlab.Mbit,
				seedUp: 50 * netlab.Mbit, timeout: 10 * time.Minute})
		})
	}
}

func benchFleet(b *testing.B, c labConfig) {
	size := 16 << 20
	if benchQuick() {
		size = 4 << 20
	}
	bound, terms := fleetBound(float64(size)*8, c)
	var xBound, xEgress []float64
	for range b.N {
		l := newLab(b, c)
		sum, src := l.bigRelease("1.0.0", size)
		l.startSeed("")
		for si := range l.devs {
			for i := range l.devs[si] {
				l.startDevice(si, i)
			}
		}
		time.Sleep(5 * time.Second) // connected and subscribed before the release
		start := time.Now()
		out := l.push("1.0.0", src)
		at := l.waitRelease("1.0.0", sum, l.all()...)
		pubTook := publishTook(b, out)
		var since []string
		for _, t := range at {
			since = append(since, (t.Sub(start) - pubTook).Round(100*time.Millisecond).String())
		}
		took := slices.MaxFunc(at, time.Time.Compare).Sub(start) - pubTook
		snap := l.waitInstalled(len(l.all()))
		links := l.linkReport(uint64(snap.SeedBytesServed), uint64(size*len(l.all())))
		egress := float64(snap.SeedBytesServed) / float64(size) / float64(len(l.sites))
		xBound = append(xBound, took.Seconds()/bound)
		xEgress = append(xEgress, egress)
		b.Logf("%d agents in %d sites, %d MiB (%s): last install after %v, bound %.2fs (%s); seed egress %.2f MB = %.2f × size per site; installs at %s; %s",
			len(l.all()), len(l.sites), size>>20, l.transport, took.Round(time.Millisecond), bound, terms, float64(snap.SeedBytesServed)/1e6, egress, strings.Join(since, " "), links)
	}
	b.ReportMetric(bound, "bound-s")
	b.ReportMetric(median(xBound), "x-bound")
	b.ReportMetric(median(xEgress), "x-size-per-site")
}

// linkReport tells what the lab's links carried so far: the bytes that
// went over TCP (the rest is QUIC) against what the seed served and the
// devices needed (need: the release bytes times the number of devices),
// the TCP connections open, and the packets the tbf qdiscs dropped on the
// seed's uplink, the sites' downlinks and the devices' uplinks.
func (l *siteLab) linkReport(served, need uint64) string {
	l.t.Helper()
	read := func(hs ...*netlab.Host) (st netlab.TCPStats, drops uint64) {
		for _, h := range hs {
			c, err := h.Counters()
			if err != nil {
				l.t.Fatal(err)
			}
			t, err := h.TCPStats()
			if err != nil {
				l.t.Fatal(err)
			}
			st.Conns += t.Conns
			st.BytesAcked += t.BytesAcked
			st.BytesRecvd += t.BytesRecvd
			drops += c.Drops
		}
		return st, drops
	}
	var devs []*netlab.Host
	for _, d := range l.all() {
		devs = append(devs, d.h)
	}
	seed, seedDrops := read(l.seed)
	dev, devDrops := read(devs...)
	var siteDrops []string
	for _, s := range l.sites {
		down, _, err := s.Counters()
		if err != nil {
			l.t.Fatal(err)
		}
		siteDrops = append(siteDrops, strconv.FormatUint(down.Drops, 10))
	}
	return fmt.Sprintf("over TCP: %.2f of the seed's egress (%d conns), %.2f of what the devices needed (%d conns); tbf drops: seed uplink %d, site downlinks %s, device uplinks %d",
		float64(seed.BytesAcked)/float64(max(served, 1)), seed.Conns, float64(dev.BytesRecvd)/float64(max(need, 1)), dev.Conns,
		seedDrops, strings.Join(siteDrops, " "), devDrops)
}

// fleetBound is the lower bound, in seconds, on giving every device of c
// bits bits (Kumar & Ross 2006, with the site terms of docs/SIMULATOR.md),
// and its terms as text.
func fleetBound(bits float64, c labConfig) (float64, string) {
	n := float64(c.sites * c.perSite)
	terms := []struct {
		name string
		s    float64
	}{
		{"seed F/u_s", bits / float64(c.seedUp)},
		{"device F/d_min", bits / float64(min(c.deviceDown, c.siteLink))},
		{"fleet N·F/(u_s+Σu_i)", n * bits / (float64(c.seedUp) + n*float64(c.deviceUp))},
		{"site F/site downlink", bits / float64(c.siteLink)},
		{"all sites S·F/(u_s+Σ site uplinks)", float64(c.sites) * bits / (float64(c.seedUp) + float64(c.sites)*float64(c.siteLink))},
	}
	var worst float64
	var text []string
	for _, t := range terms {
		worst = max(worst, t.s)
		text = append(text, fmt.Sprintf("%s %.2fs", t.name, t.s))
	}
	return worst, strings.Join(text, ", ")
}

// BenchmarkAgentMemoryNetns (figure 6): the peak and idle resident memory
// of a real agent process installing a 1 GiB release (BENCH_QUICK 256 MiB)
// over unshaped links, read from /proc/<pid>/status (VmHWM, VmRSS).
// peak-x-target is the peak against the 100 MiB target.
func BenchmarkAgentMemoryNetns(b *testing.B) {
	size := int64(1 << 30)
	if benchQuick() {
		size = 256 << 20
	}
	// The source, the CAR bundle, the publisher's, seed's and agent's
	// stores and the installed tree each hold about a copy.
	dir := os.TempDir()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		b.Fatal(err)
	}
	if free := int64(fs.Bavail) * fs.Bsize; free < 8*size {
		b.Skipf("needs %d MiB free in %s for a %d MiB release, has %d MiB", 8*size>>20, dir, size>>20, free>>20)
	}
	var peaks, idles, idlesAfter []float64
	for range b.N {
		l := newLab(b, labConfig{sites: 1, perSite: 1, timeout: 14 * time.Minute})
		dev := &l.devs[0][0]
		sum, src := l.bigRelease("1.0.0", int(size))
		l.startSeed("")
		l.startDevice(0, 0)
		time.Sleep(5 * time.Second)
		// ip netns exec has replaced itself with the agent by now.
		pid := dev.cmd.Process.Pid
		if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); !strings.Contains(string(cmdline), "agent") {
			b.Fatalf("pid %d is not the agent: %q", pid, cmdline)
		}
		idle := procStatus(b, pid, "VmRSS")
		l.push("1.0.0", src)
		l.waitRelease("1.0.0", sum, *dev)
		time.Sleep(5 * time.Second)
		peak, after := procStatus(b, pid, "VmHWM"), procStatus(b, pid, "VmRSS")
		peaks, idles, idlesAfter = append(peaks, peak), append(idles, idle), append(idlesAfter, after)
		b.Logf("agent installing %d MiB: peak RSS %.1f MiB, idle %.1f MiB before, %.1f MiB after", size>>20, peak, idle, after)
	}
	b.ReportMetric(median(peaks), "peak-MiB")
	b.ReportMetric(median(peaks)/100, "peak-x-target")
	b.ReportMetric(median(idles), "idle-MiB")
	b.ReportMetric(median(idlesAfter), "idle-after-MiB")
}

// procStatus reads a memory field of /proc/pid/status in MiB.
func procStatus(b *testing.B, pid int, field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("agent process gone: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatalf("%s: %q", field, line)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// BenchmarkDeltaNetns (figure 8): an agent runs a 64 MiB release (BENCH_QUICK
// 16 MiB), then fetches the next one, which differs in 1% of its bytes, in
// four places (one in quick mode). x-full is what the agent reports it
// received for the second release against the release size; the seed's
// served-bytes counter is logged as a cross-check.
func BenchmarkDeltaNetns(b *testing.B) {
	size := 64 << 20
	if benchQuick() {
		size = 16 << 20
	}
	places := max(1, size/(16<<20))
	var ratios []float64
	for range b.N {
		l := newLab(b, labConfig{sites: 1, perSite: 1, timeout: 10 * time.Minute})
		dev := l.devs[0][0]
		sum1, src := l.bigRelease("1.0.0", size)
		l.startSeed("")
		l.startDevice(0, 0)
		l.push("1.0.0", src)
		l.waitRelease("1.0.0", sum1, dev)
		served1 := l.waitInstalled(1).SeedBytesServed

		// Overwrite 1% of the bytes, in equal runs spread over the file.
		f, err := os.OpenFile(filepath.Join(src, "firmware.bin"), os.O_RDWR, 0)
		if err != nil {
			b.Fatal(err)
		}
		run := make([]byte, size/100/places)
		for p := range places {
			rand.Read(run)
			if _, err := f.WriteAt(run, int64(size)/int64(places)*int64(p)+int64(size)/int64(places*3)); err != nil {
				b.Fatal(err)
			}
		}
		f.Close()
		sum2 := fileSum(b, filepath.Join(src, "firmware.bin"))
		out := l.push("1.1.0", src)
		l.waitRelease("1.1.0", sum2, dev)
		snap := l.waitVersion("1.1.0", 1)
		ch := snap.Channels[0]
		got := ch.BytesSeed + ch.BytesLAN + ch.BytesPeer
		ratio := float64(got) / float64(size)
		ratios = append(ratios, ratio)
		b.Logf("%d MiB, 1%% changed in %d places: the agent received %d bytes = %.2f%% of the release (seed served %d); publisher: %s",
			size>>20, places, got, 100*ratio, snap.SeedBytesServed-served1, strings.TrimSpace(out))
	}
	b.ReportMetric(median(ratios), "x-full")
}

// bigRelease writes a random file of size bytes as a release tree, without
// holding it in memory, and returns its SHA-256 and the tree.
func (l *siteLab) bigRelease(version string, size int) ([32]byte, string) {
	src := filepath.Join(l.dir, "build-"+version)
	if err := os.MkdirAll(src, 0o755); err != nil {
		l.t.Fatal(err)
	}
	path := filepath.Join(src, "firmware.bin")
	f, err := os.Create(path)
	if err != nil {
		l.t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, int64(size)); err != nil {
		l.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		l.t.Fatal(err)
	}
	return [32]byte(h.Sum(nil)), src
}

func fileSum(t testing.TB, path string) [32]byte {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// waitRelease waits until every listed device runs version (its current
// symlink names it), checks the installed bytes, and returns when each one
// switched (polled every 50 ms), in the order given.
func (l *siteLab) waitRelease(version string, sum [32]byte, devs ...labDevice) []time.Time {
	l.t.Helper()
	at := make([]time.Time, len(devs))
	for pending := len(devs); pending > 0; {
		for i, d := range devs {
			if !at[i].IsZero() {
				continue
			}
			target, err := os.Readlink(filepath.Join(d.dir, "app", "current"))
			if err == nil && strings.HasSuffix(target, "-"+version) {
				at[i] = time.Now()
				pending--
			}
		}
		if pending == 0 {
			break
		}
		if l.ctx.Err() != nil {
			logs, _ := exec.Command("sh", "-c", "tail -n 4 "+l.dir+"/*.log").CombinedOutput()
			l.t.Fatalf("%d devices do not run %s\n%s", pending, version, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, d := range devs {
		if got := fileSum(l.t, filepath.Join(d.dir, "app", "current", "firmware.bin")); got != sum {
			l.t.Fatalf("device %s runs %s with the wrong bytes", d.dir, version)
		}
	}
	return at
}

// waitInstalled waits until the seed's status shows n devices installed at
// the newest version, and returns it.
func (l *siteLab) waitInstalled(n int) status.Snapshot { return l.waitVersion("", n) }

func (l *siteLab) waitVersion(version string, n int) status.Snapshot {
	l.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		snap := l.status()
		if len(snap.Channels) == 1 {
			v := snap.Channels[0].Versions[0]
			if (version == "" || v.Version == version) && v.Devices["installed"] == n {
				return snap
			}
		}
		if time.Now().After(deadline) {
			out, _ := json.Marshal(snap)
			l.t.Fatalf("status does not show %d devices installed: %s", n, out)
		}
	}
}

var (
	installedRE = regexp.MustCompile(`msg="release installed".* version=(\S+) took=(\S+)`)
	publishedRE = regexp.MustCompile(`(?m)^published .*, (\S+)$`)
)

// installTook is the agent's own time for version, from accepting its
// manifest to running it, from the agent's log.
func (l *siteLab) installTook(si, i int, version string) time.Duration {
	l.t.Helper()
	f, err := os.Open(filepath.Join(l.dir, fmt.Sprintf("agent-%d-%d.log", si, i)))
	if err != nil {
		l.t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := installedRE.FindStringSubmatch(sc.Text()); m != nil && m[1] == version {
			d, err := time.ParseDuration(m[2])
			if err != nil {
				l.t.Fatal(err)
			}
			return d
		}
	}
	l.t.Fatalf("agent %d-%d did not log installing %s", si, i, version)
	return 0
}

// publishTook is the publishing time the publish command printed.
func publishTook(t testing.TB, out string) time.Duration {
	m := publishedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no publishing time in %q", out)
	}
	d, err := time.ParseDuration(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// tcpCopy sends size bytes over plain TCP from one host to another and
// returns the receiver's rate in bits per second. Both ends are this test
// binary, run in the hosts' namespaces (see benchHelper).
func (l *siteLab) tcpCopy(from, to *netlab.Host, size int) float64 {
	l.t.Helper()
	self, err := os.Executable()
	if err != nil {
		l.t.Fatal(err)
	}
	addr := net.JoinHostPort(to.IP(), "4100")
	sink := to.Command(l.ctx, self)
	sink.Env = append(os.Environ(), "MESHOTA_BENCH_HELPER=sink "+addr)
	stdout, _ := sink.StdoutPipe()
	if err := sink.Start(); err != nil {
		l.t.Fatal(err)
	}
	var src *exec.Cmd
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		src = from.Command(l.ctx, self)
		src.Env = append(os.Environ(), fmt.Sprintf("MESHOTA_BENCH_HELPER=source %s %d", addr, size))
		out, err := src.CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("tcp source: %v\n%s", err, out)
		}
	}
	out, _ := io.ReadAll(stdout)
	if err := sink.Wait(); err != nil {
		l.t.Fatalf("tcp sink: %v\n%s", err, out)
	}
	var n int
	var secs float64
	if _, err := fmt.Sscan(string(out), &n, &secs); err != nil || n != size {
		l.t.Fatalf("tcp sink received %q, want %d bytes", out, size)
	}
	return float64(n) * 8 / secs
}

// benchHelper runs this test binary as a TCP sink or source when
// MESHOTA_BENCH_HELPER says so (see tcpCopy), and reports whether it did.
func benchHelper() bool {
	args := strings.Fields(os.Getenv("MESHOTA_BENCH_HELPER"))
	if len(args) == 0 {
		return false
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	switch args[0] {
	case "sink":
		ln, err := net.Listen("tcp", args[1])
		if err != nil {
			fail(err)
		}
		c, err := ln.Accept()
		if err != nil {
			fail(err)
		}
		start := time.Now()
		n, err := io.Copy(io.Discard, c)
		if err != nil {
			fail(err)
		}
		fmt.Println(n, time.Since(start).Seconds())
	case "source":
		size, _ := strconv.Atoi(args[2])
		c, err := net.Dial("tcp", args[1])
		if err != nil {
			fail(err)
		}
		if _, err := io.CopyN(c, zeros{}, int64(size)); err != nil {
			fail(err)
		}
		c.Close()
	}
	return true
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
