package status

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// Device states as reported by agents.
const (
	StateDownloading = "downloading"
	StateInstalled   = "installed"
	StateFailed      = "failed"
	StateRolledBack  = "rolled-back"
)

// Report is one device's latest validated status.
type Report struct {
	DeviceID  string        `json:"device_id"`
	Channel   string        `json:"channel"`
	Sequence  uint64        `json:"sequence"`
	Version   string        `json:"version"`
	State     string        `json:"state"`
	Error     string        `json:"error,omitempty"`
	BytesLAN  uint64        `json:"bytes_lan"`  // received from peers on the device's LAN
	BytesPeer uint64        `json:"bytes_peer"` // received from other peers
	BytesSeed uint64        `json:"bytes_seed"` // received from the seed
	Duration  time.Duration `json:"duration_ns"`
	Time      time.Time     `json:"time"` // when the device made the report
	// Frozen: the newest manifest the device accepted has expired and no
	// newer one reached it.
	Frozen bool `json:"frozen,omitempty"`
}

// Equivocation is an alarm: devices of a channel were shown two different
// manifests with one sequence (digests in hex). It stays in the snapshot
// once raised: only the operator can tell whether a release key leaked.
type Equivocation struct {
	Channel  string    `json:"channel"`
	Sequence uint64    `json:"sequence"`
	Digests  [2]string `json:"digests"` // accepted first, then offered
	Devices  []string  `json:"devices"` // that reported it, sorted
	First    time.Time `json:"first"`   // report time of the first
}

// VersionSummary counts the devices of one channel at one version.
type VersionSummary struct {
	Sequence uint64         `json:"sequence"`
	Version  string         `json:"version"`
	Devices  map[string]int `json:"devices"` // by state
}

// ChannelSummary is one channel's rollout progress.
type ChannelSummary struct {
	Channel   string           `json:"channel"`
	Versions  []VersionSummary `json:"versions"` // newest sequence first
	BytesSeed uint64           `json:"bytes_seed"`
	BytesLAN  uint64           `json:"bytes_lan"`
	BytesPeer uint64           `json:"bytes_peer"`
	Failures  []Report         `json:"failures,omitempty"` // failed and rolled back devices
	// Frozen lists the devices whose accepted manifest expired with no
	// newer one (cut off from updates, or the publisher stopped re-signing).
	Frozen []string `json:"frozen,omitempty"`
	// Equivocations are the alarms raised for this channel.
	Equivocations []Equivocation `json:"equivocations,omitempty"`
}

// Snapshot is what /api/status returns.
type Snapshot struct {
	Channels        []ChannelSummary `json:"channels"`
	SeedBytesServed uint64           `json:"seed_bytes_served"`
	Devices         int              `json:"devices"`
}

// Aggregator keeps the newest report of every device.
type Aggregator struct {
	mu     sync.Mutex
	latest map[string]Report // by device ID
	served func() uint64     // bytes the seed's exchange served; may be nil
	alarms map[alarmKey]*Equivocation
}

type alarmKey struct {
	channel  string
	sequence uint64
	digests  [2]string
}

// NewAggregator returns an empty aggregator. served, if not nil, reports the
// seed's own count of bytes served, shown beside what devices report.
func NewAggregator(served func() uint64) *Aggregator {
	return &Aggregator{latest: map[string]Report{}, served: served, alarms: map[alarmKey]*Equivocation{}}
}

// AddEquivocation records that device reported seeing two manifests of
// channel with one sequence (digests accepted first, then offered), at
// time t. It reports whether this raised a new alarm (no device had
// reported that pair before).
func (a *Aggregator) AddEquivocation(channel string, sequence uint64, digests [2]string, device string, t time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := alarmKey{channel, sequence, digests}
	e := a.alarms[k]
	if e == nil {
		a.alarms[k] = &Equivocation{Channel: channel, Sequence: sequence, Digests: digests, Devices: []string{device}, First: t}
		return true
	}
	if i, found := slices.BinarySearch(e.Devices, device); !found {
		e.Devices = slices.Insert(e.Devices, i, device)
	}
	if t.Before(e.First) {
		e.First = t
	}
	return false
}

// Add records r unless the device already reported something newer (gossip
// may deliver reports out of order). It reports whether r was kept.
func (a *Aggregator) Add(r Report) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old, ok := a.latest[r.DeviceID]; ok && !newer(r, old) {
		return false
	}
	a.latest[r.DeviceID] = r
	return true
}

// newer tells whether r supersedes old. Report times have whole-second
// resolution, so a device's "downloading" and "installed" can carry the
// same time: then an outcome beats "downloading", and an equal report
// replaces the old one (a repeat).
func newer(r, old Report) bool {
	switch {
	case r.Time.After(old.Time):
		return true
	case r.Time.Before(old.Time):
		return false
	case r.Sequence != old.Sequence:
		return r.Sequence > old.Sequence
	}
	return rank(r.State) >= rank(old.State)
}

func rank(state string) int {
	if state == StateDownloading {
		return 0
	}
	return 1
}

// Snapshot summarises the reports.
func (a *Aggregator) Snapshot() Snapshot {
	a.mu.Lock()
	reports := make([]Report, 0, len(a.latest))
	for _, r := range a.latest {
		reports = append(reports, r)
	}
	alarms := make([]Equivocation, 0, len(a.alarms))
	for _, e := range a.alarms {
		c := *e
		c.Devices = slices.Clone(e.Devices)
		alarms = append(alarms, c)
	}
	a.mu.Unlock()
	slices.SortFunc(reports, func(x, y Report) int { return cmp.Compare(x.DeviceID, y.DeviceID) })

	byChannel := map[string]*ChannelSummary{}
	for _, r := range reports {
		cs := byChannel[r.Channel]
		if cs == nil {
			cs = &ChannelSummary{Channel: r.Channel}
			byChannel[r.Channel] = cs
		}
		i := slices.IndexFunc(cs.Versions, func(v VersionSummary) bool { return v.Sequence == r.Sequence })
		if i < 0 {
			cs.Versions = append(cs.Versions, VersionSummary{Sequence: r.Sequence, Version: r.Version, Devices: map[string]int{}})
			i = len(cs.Versions) - 1
		}
		cs.Versions[i].Devices[r.State]++
		cs.BytesSeed += r.BytesSeed
		cs.BytesLAN += r.BytesLAN
		cs.BytesPeer += r.BytesPeer
		if r.State == StateFailed || r.State == StateRolledBack {
			cs.Failures = append(cs.Failures, r)
		}
		if r.Frozen {
			cs.Frozen = append(cs.Frozen, r.DeviceID)
		}
	}
	slices.SortFunc(alarms, func(x, y Equivocation) int {
		return cmp.Or(cmp.Compare(x.Sequence, y.Sequence), cmp.Compare(x.Digests[0], y.Digests[0]), cmp.Compare(x.Digests[1], y.Digests[1]))
	})
	for _, e := range alarms {
		cs := byChannel[e.Channel]
		if cs == nil {
			cs = &ChannelSummary{Channel: e.Channel}
			byChannel[e.Channel] = cs
		}
		cs.Equivocations = append(cs.Equivocations, e)
	}
	snap := Snapshot{Devices: len(reports), Channels: []ChannelSummary{}}
	for _, cs := range byChannel {
		slices.SortFunc(cs.Versions, func(x, y VersionSummary) int { return cmp.Compare(y.Sequence, x.Sequence) })
		snap.Channels = append(snap.Channels, *cs)
	}
	slices.SortFunc(snap.Channels, func(x, y ChannelSummary) int { return cmp.Compare(x.Channel, y.Channel) })
	if a.served != nil {
		snap.SeedBytesServed = a.served()
	}
	return snap
}
