package sim

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/meshota/meshota/node/policy"
)

func TestSameSeedSameBytes(t *testing.T) {
	data := []byte(`
name = "everything"
[fleet]
devices = 200
[sites]
size = 10
downlink = "20Mbit"
uplink = "5Mbit"
loss = 0.01
[release]
size = "4MiB"
chunk = "256KiB"
previous_share = 0.3
reused = 0.9
[[rollout]]
at = "0s"
share = 0.2
[[rollout]]
at = "20s"
share = 1.0
[churn]
offline_share = 0.1
mean_offline = "10s"
[[partition]]
sites = 0.2
from = "1s"
to = "15s"
[malicious]
share = 0.05
`)
	write := func(seed uint64) map[string][]byte {
		vs, err := Study(context.Background(), data, Options{Seed: seed, Runs: 2})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := WriteFiles(dir, vs); err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			files[e.Name()] = b
		}
		return files
	}
	a, b, c := write(7), write(7), write(8)
	for _, name := range []string{"summary.json", "timeseries.csv", "devices.csv", "completion_cdf.svg", "completion_cdf.png", "seed_egress.svg", "seed_egress.png"} {
		if len(a[name]) == 0 {
			t.Fatalf("%s missing or empty", name)
		}
		if !bytes.Equal(a[name], b[name]) {
			t.Errorf("%s differs between two runs with seed 7", name)
		}
	}
	if bytes.Equal(a["devices.csv"], c["devices.csv"]) {
		t.Error("seeds 7 and 8 gave the same devices.csv: the seed is not used")
	}
}

func TestCentralMatchesItsAnalyticTime(t *testing.T) {
	// Seed-bound: fast site and device links, a slow seed.
	cases := []struct {
		devices int
		size    string
		seed    string
	}{
		{50, "16MiB", "100Mbit"},
		{400, "8MiB", "200Mbit"},
		{2000, "2MiB", "1Gbit"},
	}
	for _, c := range cases {
		sc := small(t, "fleet.devices="+strconv.Itoa(c.devices), "release.size="+c.size, "seed.uplink="+c.seed,
			"sites.downlink=10Gbit", "devices.downlink=10Gbit")
		r := simulate(t, sc, StrategyCentral, 1)
		got := lastInstall(r)
		want := float64(c.devices) * float64(sc.Release.Size) / float64(sc.Seed.Uplink) // N·F/u_s
		if math.Abs(got/want-1) > 0.05 {
			t.Errorf("%d devices, %s from a %s seed: central took %.2fs, N·F/u_s = %.2fs (%.1f%% off)", c.devices, c.size, c.seed, got, want, 100*(got/want-1))
		}
	}
}

func TestNoRunBeatsTheLowerBound(t *testing.T) {
	variants := [][]string{
		nil,
		{"sites.downlink=200Mbit", "seed.uplink=50Mbit"},
		{"devices.uplink=5Mbit", "devices.downlink=10Mbit"},
		{"release.previous_share=1", "release.reused=0.9"},
		{"sites.size_dist=\"fixed\"", "sites.size=1"},
		{"malicious.share=0.1"},
		{"seed.once_per_site=0s"},
	}
	for _, v := range variants {
		sc := small(t, v...)
		for _, st := range []string{StrategyMesh, StrategyCentral} {
			for seed := uint64(1); seed <= 3; seed++ {
				r := simulate(t, sc, st, seed)
				b := r.Bound
				got := lastInstall(r)
				if got < 0 {
					t.Fatalf("%v %s seed %d: not every device installed", v, st, seed)
				}
				if got < b.Time*(1-1e-9) {
					t.Errorf("%v %s seed %d: finished in %.3fs, below the lower bound %.3fs", v, st, seed, got, b.Time)
				}
				if st == StrategyCentral && got < b.Central*(1-1e-9) {
					t.Errorf("%v central seed %d: %.3fs below its analytic time %.3fs", v, seed, got, b.Central)
				}
			}
		}
	}
}

func TestSeedSendsAboutOneCopyPerSite(t *testing.T) {
	sc := small(t)
	r := simulate(t, sc, StrategyMesh, 1)
	perSite := r.BytesSeed / float64(sc.Release.Size) / float64(r.Sites)
	if perSite > 1.05 {
		t.Errorf("mesh: the seed sent %.2f copies per site, want about 1", perSite)
	}
	// Without the LAN-first rule (policy.SiteGrants) devices of a site
	// ask the seed for the same blocks.
	off := small(t, "seed.once_per_site=0s")
	r = simulate(t, off, StrategyMesh, 1)
	if p := r.BytesSeed / float64(sc.Release.Size) / float64(r.Sites); p < 1.5*perSite {
		t.Errorf("without SiteGrants the seed sent %.2f copies per site; the rule is not what keeps it at %.2f", p, perSite)
	}
}

// TestASaturatedSeedSendsAboutOneCopyPerSite: a seed whose uplink is shared
// by so many devices that one chunk takes longer than the once-per-site
// window to reach its device. The grants of a device the seed is still
// sending to must not lapse meanwhile, or its neighbours are granted the
// same chunks (a 1,000,000-device national fleet sent 8 copies a site,
// this scenario 13).
func TestASaturatedSeedSendsAboutOneCopyPerSite(t *testing.T) {
	sc := small(t, "seed.uplink=1Mbit")
	r := simulate(t, sc, StrategyMesh, 1)
	// The premise: with at least one device a site downloading from the
	// seed at once, a chunk takes longer than the window.
	perFlow := float64(sc.Seed.Uplink) / float64(r.Sites) // bytes/s
	if chunk := float64(sc.Release.Chunk) / perFlow; chunk < sc.Seed.OncePerSite.Seconds() {
		t.Fatalf("a chunk takes about %.0fs from the seed: not saturated", chunk)
	}
	if p := r.BytesSeed / float64(sc.Release.Size) / float64(r.Sites); p > 1.05 {
		t.Errorf("the saturated seed sent %.2f copies per site, want about 1", p)
	}
	if last := lastInstall(r); last < 0 {
		t.Error("not every device installed")
	}
}

func TestMaliciousPeersWasteAChunkEachThenAreAvoided(t *testing.T) {
	sc := small(t, "malicious.share=0.05")
	r := simulate(t, sc, StrategyMesh, 3)
	if lastInstall(r) < 0 {
		t.Fatal("not every device installed")
	}
	if r.BytesWasted == 0 {
		t.Fatal("no corrupt bytes: the malicious peers were never asked")
	}
	// Every device bans a peer after one corrupt chunk: at most one chunk
	// per malicious peer of its site.
	s, _ := newState(sc, StrategyMesh, 3)
	limit := 0.0
	for _, members := range s.sites {
		bad := 0
		for _, d := range members {
			if s.malicious(d) {
				bad++
			}
		}
		limit += float64(bad*(len(members)-bad)) * float64(sc.Release.Chunk)
	}
	if r.BytesWasted > limit {
		t.Errorf("%.0f corrupt bytes received, more than one chunk per device per malicious neighbour (%.0f)", r.BytesWasted, limit)
	}
}

func TestPartitionedSitesFinishAfterHealing(t *testing.T) {
	sc := small(t, "sites.size_dist=\"fixed\"", "sites.size=10")
	sc.Partitions = []Partition{{Sites: 0.5, From: 0, To: Duration(60e9)}}
	r := simulate(t, sc, StrategyMesh, 1)
	late, early := 0, 0
	for i, x := range r.Installed {
		if x < 0 {
			t.Fatalf("device %d never installed", i)
		}
		if x >= 60 {
			late++
		} else {
			early++
		}
	}
	// Half the sites are cut from the start: none of their devices can
	// have the release before the partition heals; the rest finish well before.
	if late < r.Devices/2-10 || early < r.Devices/2-10 {
		t.Errorf("%d devices installed before the partition healed and %d after; want about half each", early, late)
	}
}

func TestChurnedDevicesStillInstall(t *testing.T) {
	sc := small(t, "churn.offline_share=0.3", "churn.mean_offline=5s")
	r := simulate(t, sc, StrategyMesh, 1)
	if lastInstall(r) < 0 {
		t.Fatal("not every device installed under churn")
	}
	calm := simulate(t, small(t), StrategyMesh, 1)
	if lastInstall(r) <= lastInstall(calm) {
		t.Errorf("churn made no difference (%.2fs vs %.2fs)", lastInstall(r), lastInstall(calm))
	}
}

func TestDeltaFetchesOnlyNewChunks(t *testing.T) {
	sc := small(t, "release.previous_share=1", "release.reused=0.9", "release.size=64MiB")
	r := simulate(t, sc, StrategyMesh, 1)
	s, _ := newState(sc, StrategyMesh, 1)
	newBytes := 0.0
	for c := range s.nChunks {
		if !s.reused[c] {
			newBytes += s.chunkLen[c]
		}
	}
	want := newBytes * float64(r.Sites)
	if r.BytesSeed > 1.05*want || r.BytesSeed < newBytes {
		t.Errorf("seed sent %.0f bytes; the new chunks once per site are %.0f", r.BytesSeed, want)
	}
}

func TestRolloutStagesUseTheAgentsRule(t *testing.T) {
	sc := small(t)
	sc.Rollout = []Stage{{At: 0, Share: 0.1}, {At: Duration(100e9), Share: 1}}
	r := simulate(t, sc, StrategyMesh, 1)
	for i, x := range r.Installed {
		in := policy.InRollout(sc.Channel, DeviceID(i), 1000)
		switch {
		case in && (x < 0 || x >= 100):
			t.Fatalf("device %d is in the 10%% stage but installed at %.1fs", i, x)
		case !in && x < 100:
			t.Fatalf("device %d is outside the 10%% stage but installed at %.1fs", i, x)
		}
	}
}

func TestSweepAndRuns(t *testing.T) {
	data := []byte("[fleet]\ndevices = 40\n[release]\nsize = \"2MiB\"\n")
	vs, err := Study(context.Background(), data, Options{Seed: 1, Runs: 3, Sets: []string{"sites.size=5,20", "seed.uplink=100Mbit,1Gbit"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 4 {
		t.Fatalf("%d variants, want 4", len(vs))
	}
	if vs[3].Label != "sites.size=20 seed.uplink=1Gbit" || vs[3].Scenario.Sites.Size != 20 {
		t.Fatalf("last variant %q, size %d", vs[3].Label, vs[3].Scenario.Sites.Size)
	}
	for _, v := range vs {
		if v.Aggregate.Runs != 3 || math.IsNaN(float64(v.Aggregate.P100.CI95)) {
			t.Fatalf("%s: %+v", v.Label, v.Aggregate)
		}
	}
	dir := t.TempDir()
	if err := WriteFiles(dir, vs); err != nil {
		t.Fatal(err)
	}
	sweep, err := os.ReadFile(filepath.Join(dir, "sweep.csv"))
	if err != nil || strings.Count(string(sweep), "\n") != 5 {
		t.Fatalf("sweep.csv: %v\n%s", err, sweep)
	}
}

func TestScenarioErrors(t *testing.T) {
	cases := []struct {
		name, toml string
		sets       []string
		want       error
		mention    string
	}{
		{"unknown key", "[sites]\nuplnk = \"1Mbit\"\n", nil, ErrUnknownKey, "sites.uplnk"},
		{"unknown table", "[seeds]\nuplink = \"1Mbit\"\n", nil, ErrUnknownKey, "seeds"},
		{"negative size", "[release]\nsize = \"-5MiB\"\n", nil, nil, "negative"},
		{"rate without unit", "[seed]\nuplink = \"100\"\n", nil, nil, "unit"},
		{"no devices", "[fleet]\ndevices = 0\n", nil, ErrInvalid, "fleet.devices"},
		{"no downlink", "[sites]\ndownlink = \"0Mbit\"\n", nil, ErrInvalid, "sites.downlink"},
		{"no seed", "[seed]\nuplink = \"0Mbit\"\n", nil, ErrInvalid, "seed.uplink"},
		{"empty sites", "[sites]\nsize = 0\n", nil, ErrInvalid, "sites.size"},
		{"bad range", "[sites]\nsize_dist = \"uniform\"\nsize_min = 9\nsize_max = 3\n", nil, ErrInvalid, "size_min"},
		{"share over one", "[malicious]\nshare = 1.5\n", nil, ErrInvalid, "malicious.share"},
		{"shrinking rollout", "[[rollout]]\nat = \"0s\"\nshare = 0.5\n[[rollout]]\nat = \"1m\"\nshare = 0.1\n", nil, ErrInvalid, "shrinks"},
		{"partition never heals", "[[partition]]\nsites = 0.1\nfrom = \"1m\"\nto = \"1m\"\n", nil, ErrInvalid, "heal"},
		{"bad strategy", "strategy = \"p2p\"\n", nil, ErrInvalid, "strategy"},
		{"bad override", "", []string{"fleet.devices"}, ErrInvalid, "key=value"},
		{"override unknown", "", []string{"fleet.phones=3"}, ErrUnknownKey, "fleet.phones"},
		{"tiny chunks", "[release]\nchunk = \"10B\"\n", nil, ErrInvalid, "release.chunk"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseScenario([]byte(c.toml), c.sets)
			if err == nil {
				t.Fatal("accepted")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("error %v is not %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("error %q does not mention %q", err, c.mention)
			}
		})
	}
}

func TestShippedExamplesAreValid(t *testing.T) {
	names := Examples()
	for _, want := range []string{"office", "retail", "factory", "national"} {
		data, ok := Example(want)
		if !ok {
			t.Fatalf("example %s missing (have %v)", want, names)
		}
		sc, err := ParseScenario(data, nil)
		if err != nil {
			t.Fatalf("%s: %v", want, err)
		}
		if sc.Name == DefaultScenario().Name {
			t.Errorf("%s has no name of its own", want)
		}
	}
	// The office runs whole; the others shrunk, to keep the test fast.
	vs, err := Study(context.Background(), mustExample(t, "office"), Options{Seed: 1})
	if err != nil || lastInstall(vs[0].Runs[0].Mesh) < 0 {
		t.Fatalf("office: %v", err)
	}
	for _, name := range []string{"retail", "factory"} {
		vs, err := Study(context.Background(), mustExample(t, name), Options{Seed: 1, Sets: []string{"fleet.devices=200", "release.size=4MiB"}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r := vs[0].Runs[0].Mesh; lastInstall(r) < 0 {
			t.Errorf("%s: not every device installed", name)
		}
	}
}

func mustExample(t *testing.T, name string) []byte {
	data, ok := Example(name)
	if !ok {
		t.Fatalf("no example %s", name)
	}
	return data
}

// TestSiteCountsOnlineHolders checks, after every churn event, that a
// site's count for a chunk is the number of its online honest devices
// holding it — including devices that start offline holding the previous
// release (once counted as online, so their site skipped chunks nobody
// online had).
func TestSiteCountsOnlineHolders(t *testing.T) {
	// Sites of up to 64 members keep lan.holders, larger ones siteCount.
	for _, sizes := range [][]string{{"sites.size_max=30"}, {"sites.size_min=60", "sites.size_max=90"}} {
		checkSiteCounts(t, small(t, append(sizes, "churn.offline_share=0.2", "churn.mean_offline=30s", "release.previous_share=0.5", "release.reused=0.7")...))
	}
}

func checkSiteCounts(t *testing.T, sc *Scenario) {
	t.Helper()
	checked := 0
	churnHook = func(s *state) {
		checked++
		for si, members := range s.sites {
			for k, d := range members {
				if got := s.waitMask[si]&(1<<k) != 0; s.smallSite(int32(si)) && got != s.dev[d].waiting {
					t.Fatalf("at %.1fs, site %d member %d: wait bit %v, waiting %v", s.now, si, k, got, s.dev[d].waiting)
				}
			}
			for c := range s.nChunks {
				want := int32(0)
				for _, d := range members {
					if s.dev[d].online && !s.malicious(d) && s.has(d, int32(c)) {
						want++
					}
				}
				if got := s.siteCount[si*s.nChunks+c]; !s.lanSmall(int32(si)) && got != want {
					t.Fatalf("at %.1fs, site %d chunk %d: count %d, online holders %d", s.now, si, c, got, want)
				}
				if got := s.lanHas(int32(si), int32(c)); got != (want > 0) {
					t.Fatalf("at %.1fs, site %d chunk %d: lanHas %v, online holders %d", s.now, si, c, got, want)
				}
			}
		}
	}
	defer func() { churnHook = nil }()
	// One worker: the hook reads every site, which other workers would
	// be changing.
	if _, err := simulateOn(context.Background(), sc, StrategyMesh, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no churn event happened")
	}
}

// TestFlowFitsCacheLine guards the flow layout: advancing a group's flows
// touches one cache line per flow.
func TestFlowFitsCacheLine(t *testing.T) {
	if n := unsafe.Sizeof(flow{}); n != 64 {
		t.Fatalf("flow is %d bytes, want 64", n)
	}
}

// TestDeviceFitsCacheLine guards the device layout: an event reads one
// cache line of each device it involves.
func TestDeviceFitsCacheLine(t *testing.T) {
	if n := unsafe.Sizeof(device{}); n != 64 {
		t.Fatalf("device is %d bytes, want 64", n)
	}
}
