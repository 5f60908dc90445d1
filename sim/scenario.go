package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Strategies.
const (
	StrategyMesh    = "mesh"    // meshota: LAN peers first, the seed once per site
	StrategyCentral = "central" // every device downloads from the seed only
)

// Scenario is one simulated rollout. docs/SIMULATOR.md documents every key.
type Scenario struct {
	Name     string `toml:"name"`
	Strategy string `toml:"strategy"`
	Channel  string `toml:"channel"`
	// MaxTime ends the simulation even if devices are still missing the
	// release (they are reported as not installed).
	MaxTime Duration `toml:"max_time"`
	// Sample is the time-series interval; 0 picks 1/200 of the lower bound.
	Sample Duration `toml:"sample"`

	Fleet      FleetSpec     `toml:"fleet"`
	Sites      SiteSpec      `toml:"sites"`
	Devices    DeviceSpec    `toml:"devices"`
	Seed       SeedSpec      `toml:"seed"`
	Release    ReleaseSpec   `toml:"release"`
	Gossip     GossipSpec    `toml:"gossip"`
	Rollout    []Stage       `toml:"rollout"`
	Churn      ChurnSpec     `toml:"churn"`
	Partitions []Partition   `toml:"partition"`
	Malicious  MaliciousSpec `toml:"malicious"`
}

// FleetSpec sizes the fleet.
type FleetSpec struct {
	Devices int `toml:"devices"`
}

// SiteSpec describes the LANs devices sit in and their WAN links.
type SiteSpec struct {
	// Size is the number of devices per site ("fixed"), the mean
	// ("geometric"), or unused ("uniform": SizeMin..SizeMax).
	Size     int    `toml:"size"`
	SizeDist string `toml:"size_dist"`
	SizeMin  int    `toml:"size_min"`
	SizeMax  int    `toml:"size_max"`
	// Downlink and Uplink are the site's WAN link, shared by its devices.
	Downlink Rate     `toml:"downlink"`
	Uplink   Rate     `toml:"uplink"`
	Latency  Duration `toml:"latency"` // one way, site to the WAN core
	Loss     float64  `toml:"loss"`    // packet loss on the WAN link
	// LANLatency and LANLoss are those of the site's LAN.
	LANLatency Duration `toml:"lan_latency"`
	LANLoss    float64  `toml:"lan_loss"`
}

// DeviceSpec describes one device's LAN interface.
type DeviceSpec struct {
	Uplink      Rate `toml:"uplink"`
	Downlink    Rate `toml:"downlink"`
	UploadSlots int  `toml:"upload_slots"` // concurrent uploads to peers
}

// SeedSpec describes the publisher's seed node.
type SeedSpec struct {
	Uplink  Rate     `toml:"uplink"`
	Latency Duration `toml:"latency"` // one way, seed to the WAN core
	// Link caps each single transfer from the seed (a per-connection limit;
	// used to mirror emulated links). 0 means none.
	Link Rate `toml:"link"`
	// Slots is how many devices the seed sends to at once (others queue);
	// 0, the default, means every device that asks, as TCP shares a link.
	Slots int `toml:"slots"`
	// OncePerSite is the seed's LAN-first window (policy.SiteGrants);
	// 0 turns the rule off.
	OncePerSite Duration `toml:"once_per_site"`
}

// ReleaseSpec describes the release and what devices already hold.
type ReleaseSpec struct {
	Size  ByteSize `toml:"size"`
	Chunk ByteSize `toml:"chunk"`
	// PreviousShare of the devices hold the previous release, of which
	// Reused (a share of the chunks) is unchanged: they fetch only the rest.
	PreviousShare float64 `toml:"previous_share"`
	Reused        float64 `toml:"reused"`
}

// GossipSpec models how the manifest reaches devices.
type GossipSpec struct {
	Degree     int      `toml:"degree"`      // gossipsub mesh degree D
	HopLatency Duration `toml:"hop_latency"` // per hop, validation included
}

// Stage widens the rollout at a time to a share of the fleet.
type Stage struct {
	At    Duration `toml:"at"`
	Share float64  `toml:"share"`
}

// ChurnSpec makes devices go offline and come back.
type ChurnSpec struct {
	OfflineShare float64  `toml:"offline_share"` // share offline at any time
	MeanOffline  Duration `toml:"mean_offline"`
}

// Partition cuts a share of the sites from the WAN for a while.
type Partition struct {
	Sites float64  `toml:"sites"` // share of the sites
	From  Duration `toml:"from"`
	To    Duration `toml:"to"`
}

// MaliciousSpec adds peers that advertise every block and serve garbage.
type MaliciousSpec struct {
	Share float64 `toml:"share"` // of the fleet size, placed in random sites
}

// DefaultScenario is what `meshota sim` runs without a scenario file: a
// 1,000-device fleet in offices of 20 behind 50/10 Mbit/s lines, a
// 100 MiB release from a 1 Gbit/s seed. It runs in seconds.
func DefaultScenario() *Scenario {
	return &Scenario{
		Name:     "default: 1,000 devices in 50 offices",
		Strategy: StrategyMesh,
		Channel:  "stable",
		MaxTime:  Duration(30 * 24 * time.Hour),
		Fleet:    FleetSpec{Devices: 1000},
		Sites: SiteSpec{
			Size: 20, SizeDist: "fixed",
			Downlink: 50e6 / 8, Uplink: 10e6 / 8, Latency: Duration(20 * time.Millisecond),
			LANLatency: Duration(time.Millisecond),
		},
		Devices: DeviceSpec{Uplink: 100e6 / 8, Downlink: 100e6 / 8, UploadSlots: 4},
		Seed: SeedSpec{
			Uplink: 1e9 / 8, Latency: Duration(5 * time.Millisecond),
			OncePerSite: Duration(30 * time.Second),
		},
		Release: ReleaseSpec{Size: 100 << 20, Chunk: 256 << 10},
		Gossip:  GossipSpec{Degree: 6, HopLatency: Duration(50 * time.Millisecond)},
		Rollout: []Stage{{At: 0, Share: 1}},
	}
}

// LoadScenario reads a scenario file over the defaults: keys the file
// leaves out keep their default values; unknown keys are an error.
func LoadScenario(fsys fs.FS, name string) (*Scenario, error) {
	var data []byte
	var err error
	if fsys != nil {
		data, err = fs.ReadFile(fsys, name)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, err
	}
	return ParseScenario(data, nil)
}

// ParseScenario decodes a scenario over the defaults and applies the
// overrides ("sites.uplink=2Mbit", see Set), then validates it.
func ParseScenario(data []byte, overrides []string) (*Scenario, error) {
	tree := map[string]any{}
	if _, err := toml.Decode(string(data), &tree); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	for _, o := range overrides {
		if err := setKey(tree, o); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(tree); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	s := DefaultScenario()
	if _, ok := tree["rollout"]; ok {
		s.Rollout = nil // a file's stages replace the default's
	}
	md, err := toml.Decode(buf.String(), s)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if un := md.Undecoded(); len(un) > 0 {
		keys := make([]string, len(un))
		for i, k := range un {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%w: %s (see docs/SIMULATOR.md for the keys)", ErrUnknownKey, strings.Join(keys, ", "))
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// ErrUnknownKey and ErrInvalid classify scenario errors.
var (
	ErrUnknownKey = errors.New("scenario: unknown key")
	ErrInvalid    = errors.New("scenario: invalid")
)

// setKey applies "a.b.c=value" to a decoded TOML tree. The value is read
// as TOML (numbers, booleans, quoted strings) or else as a bare string.
func setKey(tree map[string]any, kv string) error {
	key, val, ok := strings.Cut(kv, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return fmt.Errorf("%w: override %q: want key=value, such as sites.uplink=2Mbit", ErrInvalid, kv)
	}
	var v any = strings.TrimSpace(val)
	var probe map[string]any
	if _, err := toml.Decode("v = "+strings.TrimSpace(val), &probe); err == nil {
		v = probe["v"]
	}
	path := strings.Split(key, ".")
	m := tree
	for _, p := range path[:len(path)-1] {
		next, ok := m[p]
		if !ok {
			nm := map[string]any{}
			m[p] = nm
			m = nm
			continue
		}
		nm, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("%w: override %q: %s is not a table", ErrInvalid, kv, p)
		}
		m = nm
	}
	m[path[len(path)-1]] = v
	return nil
}

// Validate checks that the scenario describes a possible network, with
// messages that name the key to fix.
func (s *Scenario) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)
	}
	switch {
	case s.Strategy != StrategyMesh && s.Strategy != StrategyCentral:
		return bad("strategy %q: want %q or %q", s.Strategy, StrategyMesh, StrategyCentral)
	case s.Fleet.Devices < 1:
		return bad("fleet.devices is %d: a fleet needs at least one device", s.Fleet.Devices)
	case s.Fleet.Devices > 50_000_000:
		return bad("fleet.devices is %d: more than this simulator can hold (50,000,000)", s.Fleet.Devices)
	case s.Release.Size < 1:
		return bad("release.size must be positive")
	case s.Release.Chunk < 1024:
		return bad("release.chunk is %d bytes: use at least 1KiB", s.Release.Chunk)
	case int64(s.Release.Size)/int64(s.Release.Chunk) > 1<<20:
		return bad("release.size/release.chunk is over a million chunks: use a larger release.chunk")
	case s.Seed.Uplink <= 0:
		return bad("seed.uplink must be positive: the seed is the only source of a new release")
	case s.Seed.Slots < 0:
		return bad("seed.slots is negative (0 means no limit)")
	case s.Sites.Downlink <= 0:
		return bad("sites.downlink must be positive: devices could never receive the release")
	case s.Sites.Uplink < 0:
		return bad("sites.uplink is negative")
	case s.Devices.Downlink <= 0:
		return bad("devices.downlink must be positive")
	case s.Devices.Uplink < 0:
		return bad("devices.uplink is negative")
	case s.Devices.UploadSlots < 1:
		return bad("devices.upload_slots must be at least 1")
	case s.Gossip.Degree < 1:
		return bad("gossip.degree must be at least 1")
	case s.MaxTime <= 0:
		return bad("max_time must be positive")
	}
	for _, p := range []struct {
		name string
		v    float64
		max  float64
	}{
		{"sites.loss", s.Sites.Loss, 0.5}, {"sites.lan_loss", s.Sites.LANLoss, 0.5},
		{"release.previous_share", s.Release.PreviousShare, 1}, {"release.reused", s.Release.Reused, 1},
		{"churn.offline_share", s.Churn.OfflineShare, 0.95}, {"malicious.share", s.Malicious.Share, 1},
	} {
		if p.v < 0 || p.v > p.max || math.IsNaN(p.v) {
			return bad("%s is %v: want a share between 0 and %v", p.name, p.v, p.max)
		}
	}
	switch s.Sites.SizeDist {
	case "fixed", "geometric", "":
		if s.Sites.Size < 1 {
			return bad("sites.size is %d: a site holds at least one device", s.Sites.Size)
		}
	case "uniform":
		if s.Sites.SizeMin < 1 || s.Sites.SizeMax < s.Sites.SizeMin {
			return bad("sites.size_min..size_max is %d..%d: want 1 <= size_min <= size_max", s.Sites.SizeMin, s.Sites.SizeMax)
		}
	default:
		return bad("sites.size_dist %q: want fixed, uniform or geometric", s.Sites.SizeDist)
	}
	if s.Churn.OfflineShare > 0 && s.Churn.MeanOffline <= 0 {
		return bad("churn.mean_offline must be positive when churn.offline_share is set")
	}
	if len(s.Rollout) == 0 {
		return bad("rollout: at least one stage is needed")
	}
	if !sort.SliceIsSorted(s.Rollout, func(i, j int) bool { return s.Rollout[i].At < s.Rollout[j].At }) {
		return bad("rollout stages must be in time order")
	}
	for i, st := range s.Rollout {
		if st.Share < 0 || st.Share > 1 {
			return bad("rollout stage %d: share %v: want 0..1", i+1, st.Share)
		}
		if i > 0 && st.Share < s.Rollout[i-1].Share {
			return bad("rollout stage %d shrinks the rollout from %v to %v", i+1, s.Rollout[i-1].Share, st.Share)
		}
	}
	if s.Rollout[len(s.Rollout)-1].Share == 0 {
		return bad("rollout: the last stage reaches no device")
	}
	for i, p := range s.Partitions {
		if p.Sites <= 0 || p.Sites > 1 {
			return bad("partition %d: sites is %v: want a share of the sites in (0, 1]", i+1, p.Sites)
		}
		if p.To <= p.From {
			return bad("partition %d: to (%v) must be after from (%v): partitions heal", i+1, p.To, p.From)
		}
	}
	return nil
}

// Label is a short name for output files and tables.
func (s *Scenario) Label() string {
	return fmt.Sprintf("%s N=%s F=%v", s.Strategy, strconv.Itoa(s.Fleet.Devices), s.Release.Size)
}
