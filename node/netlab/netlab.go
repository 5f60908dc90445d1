package netlab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// namePrefix starts every namespace this package creates; the creating
// process's PID follows, so stale labs of dead processes can be found.
const namePrefix = "mlab"

// ErrUnavailable means this machine cannot build labs (not root, or no ip).
var ErrUnavailable = errors.New("netlab: network namespaces unavailable")

// Available reports why labs cannot be built here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root (run as root, as CI does)", ErrUnavailable)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: no ip command (install iproute2)", ErrUnavailable)
	}
	if _, err := exec.LookPath("tc"); err != nil {
		return fmt.Errorf("%w: no tc command (install iproute2)", ErrUnavailable)
	}
	return nil
}

// Lab is one network. Methods are safe for concurrent use.
type Lab struct {
	id string // unique per lab: prefix-pid-seq

	mu     sync.Mutex
	sites  []*Site
	hosts  []*Host
	wanN   int // hosts on the WAN
	procs  []*exec.Cmd
	closed bool
}

var labSeq struct {
	sync.Mutex
	n int
}

// New builds an empty lab (just the switch) and registers its removal with
// t.Cleanup. It skips the test, with the reason, where labs are unavailable.
func New(t testing.TB) *Lab {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	sweepStale()
	labSeq.Lock()
	labSeq.n++
	n := labSeq.n
	labSeq.Unlock()
	l := &Lab{id: fmt.Sprintf("%s-%d-%d", namePrefix, os.Getpid(), n)}
	t.Cleanup(l.Close)
	if err := l.init(); err != nil {
		t.Fatalf("netlab: %v", err)
	}
	return l
}

func (l *Lab) sw() string { return l.id + "-sw" }

func (l *Lab) init() error {
	if err := run("ip", "netns", "add", l.sw()); err != nil {
		return err
	}
	return runAll(
		[]string{"ip", "-n", l.sw(), "link", "set", "lo", "up"},
		[]string{"ip", "-n", l.sw(), "link", "add", "wan", "type", "bridge"},
		[]string{"ip", "-n", l.sw(), "link", "set", "wan", "up"},
	)
}

// Rate is a link rate in bits per second; 0 means unshaped.
type Rate uint64

// Common rates.
const (
	Kbit Rate = 1000
	Mbit Rate = 1000 * Kbit
)

// Site is a LAN behind a router with a shaped uplink and downlink.
type Site struct {
	lab    *Lab
	index  int // 1-based
	router string
	hosts  int
}

// SiteOptions shape a site's connection to the WAN.
type SiteOptions struct {
	Uplink   Rate // site to WAN
	Downlink Rate // WAN to site
}

// AddSite creates a site with its router and bridge.
func (l *Lab) AddSite(o SiteOptions) (*Site, error) {
	l.mu.Lock()
	idx := len(l.sites) + 1
	s := &Site{lab: l, index: idx, router: fmt.Sprintf("%s-r%d", l.id, idx)}
	l.sites = append(l.sites, s)
	l.mu.Unlock()
	if idx > 250 {
		return nil, errors.New("netlab: at most 250 sites")
	}
	br := fmt.Sprintf("s%d", idx)
	wanIP := fmt.Sprintf("10.200.1.%d", idx)
	lanIP := fmt.Sprintf("10.201.%d.1", idx)
	cmds := [][]string{
		{"ip", "netns", "add", s.router},
		{"ip", "-n", s.router, "link", "set", "lo", "up"},
		{"ip", "-n", l.sw(), "link", "add", br, "type", "bridge"},
		{"ip", "-n", l.sw(), "link", "set", br, "up"},
		{"ip", "link", "add", "wan0", "netns", s.router, "type", "veth", "peer", "name", fmt.Sprintf("r%dw", idx), "netns", l.sw()},
		{"ip", "link", "add", "lan0", "netns", s.router, "type", "veth", "peer", "name", fmt.Sprintf("r%dl", idx), "netns", l.sw()},
		{"ip", "-n", l.sw(), "link", "set", fmt.Sprintf("r%dw", idx), "master", "wan", "up"},
		{"ip", "-n", l.sw(), "link", "set", fmt.Sprintf("r%dl", idx), "master", br, "up"},
		{"ip", "-n", s.router, "addr", "add", wanIP + "/16", "dev", "wan0"},
		{"ip", "-n", s.router, "addr", "add", lanIP + "/24", "dev", "lan0"},
		{"ip", "-n", s.router, "link", "set", "wan0", "up"},
		{"ip", "-n", s.router, "link", "set", "lan0", "up"},
		{"ip", "netns", "exec", s.router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"},
	}
	// Routers reach the other sites through their routers.
	for _, other := range l.sitesSnapshot() {
		if other == s {
			continue
		}
		cmds = append(cmds,
			[]string{"ip", "-n", s.router, "route", "add", fmt.Sprintf("10.201.%d.0/24", other.index), "via", fmt.Sprintf("10.200.1.%d", other.index)},
			[]string{"ip", "-n", other.router, "route", "add", fmt.Sprintf("10.201.%d.0/24", idx), "via", wanIP},
		)
	}
	if err := runAll(cmds...); err != nil {
		return nil, err
	}
	if err := shape(s.router, "wan0", o.Uplink); err != nil {
		return nil, err
	}
	if err := shape(s.router, "lan0", o.Downlink); err != nil {
		return nil, err
	}
	// Hosts already on the WAN learn the route to the new site.
	for _, h := range l.hostsSnapshot() {
		if h.site == nil {
			if err := run("ip", "-n", h.ns, "route", "add", fmt.Sprintf("10.201.%d.0/24", idx), "via", wanIP); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

func (l *Lab) sitesSnapshot() []*Site {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Site(nil), l.sites...)
}

func (l *Lab) hostsSnapshot() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Host(nil), l.hosts...)
}

// Host is one machine: a namespace with one network interface.
type Host struct {
	lab  *Lab
	ns   string
	ip   string
	site *Site // nil on the WAN
}

// HostOptions shape a host's own link.
type HostOptions struct {
	Up   Rate // host to its bridge
	Down Rate // bridge to host
}

// AddHost adds a host to site, or to the WAN when site is nil.
func (l *Lab) AddHost(site *Site, o HostOptions) (*Host, error) {
	l.mu.Lock()
	hostIdx := len(l.hosts) + 1
	var ip, gw, br string
	if site == nil {
		l.wanN++
		ip, br = fmt.Sprintf("10.200.0.%d", l.wanN), "wan"
		if l.wanN > 250 {
			l.mu.Unlock()
			return nil, errors.New("netlab: at most 250 WAN hosts")
		}
	} else {
		site.hosts++
		ip, gw, br = fmt.Sprintf("10.201.%d.%d", site.index, site.hosts+1), fmt.Sprintf("10.201.%d.1", site.index), fmt.Sprintf("s%d", site.index)
		if site.hosts > 250 {
			l.mu.Unlock()
			return nil, errors.New("netlab: at most 250 hosts per site")
		}
	}
	h := &Host{lab: l, ns: fmt.Sprintf("%s-h%d", l.id, hostIdx), ip: ip, site: site}
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()

	port := fmt.Sprintf("h%d", hostIdx)
	mask := "/24"
	if site == nil {
		mask = "/16" // the WAN is 10.200.0.0/16: hosts and routers' legs
	}
	cmds := [][]string{
		{"ip", "netns", "add", h.ns},
		{"ip", "-n", h.ns, "link", "set", "lo", "up"},
		{"ip", "link", "add", "eth0", "netns", h.ns, "type", "veth", "peer", "name", port, "netns", l.sw()},
		{"ip", "-n", l.sw(), "link", "set", port, "master", br, "up"},
		{"ip", "-n", h.ns, "addr", "add", ip + mask, "dev", "eth0"},
		{"ip", "-n", h.ns, "link", "set", "eth0", "up"},
	}
	if site != nil {
		// Only the lab's own ranges are routed; there is no default route.
		cmds = append(cmds,
			[]string{"ip", "-n", h.ns, "route", "add", "10.200.0.0/16", "via", gw},
			[]string{"ip", "-n", h.ns, "route", "add", "10.201.0.0/16", "via", gw})
	} else {
		for _, s := range l.sitesSnapshot() {
			cmds = append(cmds, []string{"ip", "-n", h.ns, "route", "add", fmt.Sprintf("10.201.%d.0/24", s.index), "via", fmt.Sprintf("10.200.1.%d", s.index)})
		}
	}
	if err := runAll(cmds...); err != nil {
		return nil, err
	}
	if err := shape(h.ns, "eth0", o.Up); err != nil {
		return nil, err
	}
	if err := shape(l.sw(), port, o.Down); err != nil {
		return nil, err
	}
	return h, nil
}

// IP is the host's address.
func (h *Host) IP() string { return h.ip }

// Namespace is the host's network namespace name.
func (h *Host) Namespace() string { return h.ns }

// Command returns a command that runs inside the host's namespace. Started
// commands are killed (with their process groups) when the lab closes.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.ns, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	h.lab.mu.Lock()
	h.lab.procs = append(h.lab.procs, cmd)
	h.lab.mu.Unlock()
	return cmd
}

// SetLoss drops pct percent of the packets the host receives (0 removes it).
func (h *Host) SetLoss(pct int) error { return setDrop(h.ns, "input", pct) }

// SetLoss drops pct percent of the packets the site's router forwards, in
// both directions.
func (s *Site) SetLoss(pct int) error { return setDrop(s.router, "forward", pct) }

// Partition cuts (or, with false, heals) the site from the WAN: the router
// stops forwarding. Hosts inside the site still reach each other.
func (s *Site) Partition(cut bool) error {
	if cut {
		return setDrop(s.router, "forward", 100)
	}
	return setDrop(s.router, "forward", 0)
}

// BlockUDP drops (or, with false, lets through again) the UDP packets
// the site's router forwards, as a firewall that lets only TCP out would:
// QUIC cannot cross it, TCP can, and the LAN is not affected.
func (s *Site) BlockUDP(block bool) error {
	if _, err := exec.LookPath("nft"); err != nil {
		return fmt.Errorf("netlab: blocking needs nftables (apt-get install nftables): %w", err)
	}
	const table = "netlab_udp"
	_ = run("ip", "netns", "exec", s.router, "nft", "delete", "table", "inet", table)
	if !block {
		return nil
	}
	return runAll(
		[]string{"ip", "netns", "exec", s.router, "nft", "add", "table", "inet", table},
		[]string{"ip", "netns", "exec", s.router, "nft", "add", "chain", "inet", table, "c", "{ type filter hook forward priority 0; }"},
		[]string{"ip", "netns", "exec", s.router, "nft", "add", "rule", "inet", table, "c", "meta", "l4proto", "udp", "drop"},
	)
}

func setDrop(ns, hook string, pct int) error {
	if _, err := exec.LookPath("nft"); err != nil {
		return fmt.Errorf("netlab: loss needs nftables (apt-get install nftables): %w", err)
	}
	if pct < 0 || pct > 100 {
		return fmt.Errorf("netlab: loss %d%% out of range", pct)
	}
	table := "netlab_" + hook
	_ = run("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", table)
	if pct == 0 {
		return nil
	}
	rule := []string{"ip", "netns", "exec", ns, "nft", "add", "rule", "inet", table, "c", "drop"}
	if pct < 100 {
		rule = []string{"ip", "netns", "exec", ns, "nft", "add", "rule", "inet", table, "c", "numgen", "random", "mod", "100", "<", strconv.Itoa(pct), "drop"}
	}
	return runAll(
		[]string{"ip", "netns", "exec", ns, "nft", "add", "table", "inet", table},
		[]string{"ip", "netns", "exec", ns, "nft", "add", "chain", "inet", table, "c", "{ type filter hook " + hook + " priority 0; }"},
		rule,
	)
}

// shape limits the egress of dev in ns to r with a token bucket.
func shape(ns, dev string, r Rate) error {
	if r == 0 {
		return nil
	}
	// Burst: at least one MTU, about 10 ms of traffic; queue: ~100 ms.
	burst := max(uint64(r)/8/100, 3000)
	return run("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf",
		"rate", strconv.FormatUint(uint64(r), 10)+"bit",
		"burst", strconv.FormatUint(burst, 10),
		"latency", "100ms")
}

// Counters are what a link carried: the bytes sent on it and the packets
// its tbf qdisc dropped (0 when it is unshaped).
type Counters struct {
	TxBytes uint64
	Drops   uint64
}

// Counters reads the host's own link, in its sending direction.
func (h *Host) Counters() (Counters, error) { return counters(h.ns, "eth0") }

// Counters reads the site's link from the WAN (down: the router's LAN
// leg sends what came from the WAN) and to it (up).
func (s *Site) Counters() (down, up Counters, err error) {
	if down, err = counters(s.router, "lan0"); err != nil {
		return
	}
	up, err = counters(s.router, "wan0")
	return
}

func counters(ns, dev string) (Counters, error) {
	var c Counters
	out, err := exec.Command("ip", "-n", ns, "-j", "-s", "link", "show", dev).Output()
	if err != nil {
		return c, fmt.Errorf("netlab: ip -s link show %s in %s: %w", dev, ns, err)
	}
	var links []struct {
		Stats struct {
			Tx struct {
				Bytes uint64 `json:"bytes"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return c, fmt.Errorf("netlab: ip -s link show %s in %s: %q: %v", dev, ns, out, err)
	}
	c.TxBytes = links[0].Stats.Tx.Bytes
	out, err = exec.Command("ip", "netns", "exec", ns, "tc", "-s", "-j", "qdisc", "show", "dev", dev).Output()
	if err != nil {
		return c, fmt.Errorf("netlab: tc -s qdisc show %s in %s: %w", dev, ns, err)
	}
	var qdiscs []struct {
		Kind  string `json:"kind"`
		Drops uint64 `json:"drops"`
	}
	if err := json.Unmarshal(out, &qdiscs); err != nil {
		return c, fmt.Errorf("netlab: tc -s qdisc show %s in %s: %q: %v", dev, ns, out, err)
	}
	for _, q := range qdiscs {
		if q.Kind == "tbf" {
			c.Drops += q.Drops
		}
	}
	return c, nil
}

// TCPStats sums the host's established TCP connections: how many, and
// the payload bytes they had acknowledged and received (ss's bytes_acked
// and bytes_received), for telling how much of its traffic went over TCP
// rather than QUIC (UDP), which ss cannot see per connection.
type TCPStats struct {
	Conns                  int
	BytesAcked, BytesRecvd uint64
}

// TCPStats reads the host's established TCP connections now.
func (h *Host) TCPStats() (TCPStats, error) {
	var st TCPStats
	out, err := exec.Command("ip", "netns", "exec", h.ns, "ss", "-tinH", "state", "established").Output()
	if err != nil {
		return st, fmt.Errorf("netlab: ss in %s: %w", h.ns, err)
	}
	for _, f := range strings.Fields(string(out)) {
		var sum *uint64
		k, v, _ := strings.Cut(f, ":")
		switch k {
		case "bytes_acked":
			sum = &st.BytesAcked
			st.Conns++
		case "bytes_received":
			sum = &st.BytesRecvd
		default:
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return st, fmt.Errorf("netlab: ss in %s: %q", h.ns, f)
		}
		*sum += n
	}
	return st, nil
}

// Close kills the lab's processes and deletes its namespaces. It is safe
// to call more than once.
func (l *Lab) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	procs := l.procs
	l.mu.Unlock()
	for _, p := range procs {
		if p.Process != nil {
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
		}
	}
	deleteNamespaces(func(name string) bool { return name == l.id+"-sw" || strings.HasPrefix(name, l.id+"-") })
}

// sweepStale deletes namespaces left by labs whose process is gone.
func sweepStale() {
	deleteNamespaces(func(name string) bool {
		rest, ok := strings.CutPrefix(name, namePrefix+"-")
		if !ok {
			return false
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil {
			return false
		}
		return syscall.Kill(pid, 0) == syscall.ESRCH
	})
}

func deleteNamespaces(match func(string) bool) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if name != "" && match(name) {
			// Kill anything still running inside, then remove it.
			if pids, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
				for _, p := range strings.Fields(string(pids)) {
					if pid, err := strconv.Atoi(p); err == nil {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			_ = run("ip", "netns", "del", name)
		}
	}
}

func run(args ...string) error {
	cmd := exec.Command(args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("netlab: %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

func runAll(cmds ...[]string) error {
	for _, c := range cmds {
		if err := run(c...); err != nil {
			return err
		}
	}
	return nil
}
