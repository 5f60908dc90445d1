package seed

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshota/meshota/content/store"
	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/node/bundle"
	"github.com/meshota/meshota/node/catchup"
	"github.com/meshota/meshota/node/gossip"
	"github.com/meshota/meshota/node/statefile"
	"github.com/meshota/meshota/node/status"
	"github.com/meshota/meshota/protocol"
)

// Config is what a seed needs.
type Config struct {
	// Dir holds the seed's state file.
	Dir   string
	Store *store.Store
	Host  host.Host
	// Gossip must be started on Host before Host connects to peers.
	Gossip *gossip.Service
	// InitialRoot is the publisher's signed trust root, used when the
	// state has none yet.
	InitialRoot []byte
	// AnnounceInterval is how often the latest manifests are re-announced
	// (default 2 minutes; at least the gossip repeat window).
	AnnounceInterval time.Duration
	// Served reports the bytes the block exchange served; optional.
	Served func() uint64
	Limits protocol.Limits
	Now    func() time.Time
	Logger *slog.Logger
}

// Seed is a seed node.
type Seed struct {
	cfg Config
	log *slog.Logger
	agg *status.Aggregator

	mu       sync.Mutex
	st       *persisted
	trusted  *protocol.TrustedState
	enrolled map[string]map[protocol.DeviceID]crypto.PublicKey // by channel
	channels map[string]*channel                               // joined topics
	runCtx   context.Context
}

type channel struct {
	manifests *gossip.Topic
	reports   *gossip.Topic
	stop      context.CancelFunc // the announce loop
}

type persisted struct {
	Roots    [][]byte                 `cbor:"1,keyasint"`
	Channels map[string]*channelState `cbor:"2,keyasint"`
}

type channelState struct {
	Manifest    []byte   `cbor:"1,keyasint"`
	Enrollments [][]byte `cbor:"2,keyasint,omitempty"`
}

const stateFile = "seed.state"

// New loads the seed's state.
func New(cfg Config) (*Seed, error) {
	if cfg.Dir == "" || cfg.Store == nil || cfg.Host == nil || cfg.Gossip == nil {
		return nil, errors.New("seed: dir, store, host and gossip are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AnnounceInterval == 0 {
		cfg.AnnounceInterval = 2 * time.Minute
	}
	s := &Seed{cfg: cfg, log: cfg.Logger, agg: status.NewAggregator(cfg.Served),
		enrolled: map[string]map[protocol.DeviceID]crypto.PublicKey{}, channels: map[string]*channel{}}
	st := &persisted{}
	if err := statefile.Load(filepath.Join(cfg.Dir, stateFile), st); err != nil && !errors.Is(err, statefile.ErrNotFound) {
		return nil, fmt.Errorf("seed: %w", err)
	}
	if st.Channels == nil {
		st.Channels = map[string]*channelState{}
	}
	if len(st.Roots) == 0 {
		if cfg.InitialRoot == nil {
			return nil, ErrNoRoot
		}
		st.Roots = [][]byte{cfg.InitialRoot}
	}
	root, err := protocol.VerifyRootChain(st.Roots, cfg.Limits)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	s.st, s.trusted = st, protocol.NewTrustedState(root)
	for name, cs := range st.Channels {
		m, err := protocol.DecodeManifest(cs.Manifest, cfg.Limits)
		if err != nil {
			return nil, fmt.Errorf("seed: stored manifest of %q: %w", name, err)
		}
		s.trusted.Channels[name] = protocol.ChannelMark{Sequence: m.Sequence, Digest: m.Digest(), Version: m.Version}
		s.enrolled[name] = enrolledKeys(cs.Enrollments, cfg.Limits, s.log)
	}
	return s, s.save()
}

func (s *Seed) save() error { return statefile.Save(filepath.Join(s.cfg.Dir, stateFile), s.st) }

func enrolledKeys(list [][]byte, l protocol.Limits, log *slog.Logger) map[protocol.DeviceID]crypto.PublicKey {
	out := map[protocol.DeviceID]crypto.PublicKey{}
	for _, b := range list {
		e, err := protocol.ParseEnrollment(b, l)
		if err != nil {
			log.Warn("enrollment record refused", "err", err)
			continue
		}
		pub, err := e.PublicKey()
		if err != nil {
			continue
		}
		out[e.Device] = pub
	}
	return out
}

// Aggregator is the seed's view of the fleet's reports.
func (s *Seed) Aggregator() *status.Aggregator { return s.agg }

// Run serves until ctx ends: catch-up, every known channel's topics and
// announcements.
func (s *Seed) Run(ctx context.Context) error {
	catchup.Serve(s.cfg.Host, s.cfg.Limits, s.log, s)
	defer catchup.Stop(s.cfg.Host)
	s.mu.Lock()
	s.runCtx = ctx
	names := make([]string, 0, len(s.st.Channels))
	for name := range s.st.Channels {
		names = append(names, name)
	}
	s.mu.Unlock()
	sort.Strings(names)
	for _, name := range names {
		if err := s.serveChannel(name); err != nil {
			return err
		}
	}
	<-ctx.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.channels {
		c.stop()
		c.manifests.Close()
		c.reports.Close()
	}
	s.channels = map[string]*channel{}
	s.runCtx = nil
	return nil
}

// serveChannel joins the channel's topics (once) and (re)starts the
// announcement of its latest manifest.
func (s *Seed) serveChannel(name string) error {
	s.mu.Lock()
	ctx := s.runCtx
	c := s.channels[name]
	cs := s.st.Channels[name]
	s.mu.Unlock()
	if ctx == nil || cs == nil {
		return nil // not running yet: Run will do it
	}
	if c == nil {
		mt, err := s.cfg.Gossip.Join(protocol.ManifestTopic(name), s.validateManifest(name))
		if err != nil {
			return err
		}
		rt, err := s.cfg.Gossip.Join(protocol.StatusTopic(name), s.validateReport(name))
		if err != nil {
			mt.Close()
			return err
		}
		c = &channel{manifests: mt, reports: rt, stop: func() {}}
		s.mu.Lock()
		s.channels[name] = c
		s.mu.Unlock()
		go s.drain(ctx, mt)
		go s.collect(ctx, rt, name)
	}
	actx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	c.stop()
	c.stop = cancel
	s.mu.Unlock()
	go c.manifests.Announce(actx, cs.Manifest, s.cfg.AnnounceInterval)
	return nil
}

// drain takes manifests other nodes announce on the topic (a seed learns
// only through Import, but must read its subscription).
func (s *Seed) drain(ctx context.Context, t *gossip.Topic) {
	for {
		if _, err := t.Next(ctx); err != nil {
			return
		}
	}
}

func (s *Seed) collect(ctx context.Context, t *gossip.Topic, name string) {
	for {
		msg, err := t.Next(ctx)
		if err != nil {
			return
		}
		s.mu.Lock()
		keys := s.enrolled[name]
		s.mu.Unlock()
		r, err := protocol.ValidateStatusReport(msg.Data, keys, name, s.cfg.Now(), s.cfg.Limits)
		if err != nil {
			continue
		}
		s.agg.Add(status.Report{
			DeviceID: r.Device.String(), Channel: r.Channel, Sequence: r.Sequence, Version: r.Version,
			State: r.State.String(), Error: r.Error,
			BytesLAN: r.BytesFromLAN, BytesPeer: r.BytesFromPeers - r.BytesFromLAN, BytesSeed: r.BytesFromSeed,
			Duration: time.Duration(r.DurationMillis) * time.Millisecond, Time: r.Time,
			Frozen: r.ManifestExpired,
		})
		if e := r.Equivocation; e != nil {
			digests := [2]string{hex.EncodeToString(e.Accepted), hex.EncodeToString(e.Offered)}
			if s.agg.AddEquivocation(name, e.Sequence, digests, r.Device.String(), r.Time) {
				s.log.Error("EQUIVOCATION reported: devices were shown two different manifests with one sequence; the release keys may be compromised",
					"channel", name, "sequence", e.Sequence, "accepted", digests[0], "offered", digests[1], "device", r.Device.String())
			}
		}
	}
}

func (s *Seed) validateManifest(name string) gossip.Validator {
	return func(_ context.Context, _ peer.ID, data []byte) gossip.Verdict {
		s.mu.Lock()
		_, err := protocol.ValidateManifest(data, s.trusted, name, s.cfg.Now(), s.cfg.Limits)
		s.mu.Unlock()
		switch {
		case err == nil, errors.Is(err, protocol.ErrDuplicate):
			return gossip.Accept
		case protocol.Penalises(err):
			return gossip.Reject
		}
		return gossip.Ignore
	}
}

func (s *Seed) validateReport(name string) gossip.Validator {
	return func(_ context.Context, _ peer.ID, data []byte) gossip.Verdict {
		s.mu.Lock()
		keys := s.enrolled[name]
		s.mu.Unlock()
		_, err := protocol.ValidateStatusReport(data, keys, name, s.cfg.Now(), s.cfg.Limits)
		switch {
		case err == nil:
			return gossip.Accept
		case protocol.Penalises(err):
			return gossip.Reject
		}
		return gossip.Ignore // not enrolled as far as this seed knows: its import may be older
	}
}

// LatestManifest implements catchup.Source.
func (s *Seed) LatestManifest(channel string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs := s.st.Channels[channel]; cs != nil {
		return cs.Manifest
	}
	return nil
}

// RootsAfter implements catchup.Source.
func (s *Seed) RootsAfter(v uint64) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return protocol.RootsAfter(s.st.Roots, v, s.cfg.Limits)
}

// ImportResult says what Import took in.
type ImportResult struct {
	Channel  string `json:"channel"`
	Sequence uint64 `json:"sequence"`
	Version  string `json:"version"`
	Blocks   int    `json:"blocks"`
	Bytes    uint64 `json:"bytes"`
	Devices  int    `json:"devices"`
}

// Import takes a release bundle: stores its verified blocks, adopts newer
// trust roots, validates the manifest like any node would, checks that
// every referenced block is present, pins the release and announces it.
func (s *Seed) Import(ctx context.Context, r io.Reader) (*ImportResult, error) {
	l := s.cfg.Limits
	maxBytes := protocol.DefaultLimits.MaxReleaseSize
	if l.MaxReleaseSize != 0 {
		maxBytes = l.MaxReleaseSize
	}
	doc, st, err := bundle.Read(ctx, r, s.cfg.Store.Blockstore(), maxBytes+(64<<20))
	if err != nil {
		return nil, err
	}
	if err := s.adoptRoots(doc.Roots); err != nil {
		return nil, err
	}
	pre, err := protocol.DecodeManifest(doc.Manifest, l)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	m, err := protocol.ValidateManifest(doc.Manifest, s.trusted, pre.Channel, s.cfg.Now(), l)
	s.mu.Unlock()
	if err != nil && !errors.Is(err, protocol.ErrDuplicate) {
		return nil, fmt.Errorf("seed: release refused: %w", err)
	}
	fresh := m != nil
	if !fresh {
		m = pre // the same release again: re-check it is complete, re-pin
	}
	if _, err := bundle.References(ctx, s.cfg.Store.Blockstore(), m, l); err != nil {
		return nil, err
	}
	keyring, err := bundle.KeyringBlocks(ctx, s.cfg.Store.Blockstore(), m, l)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Store.Pin(ctx, store.Pin{Channel: m.Channel, Sequence: m.Sequence, BlockList: m.Blocks, Extra: keyring}); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if fresh {
		if err := s.trusted.Accept(m); err != nil {
			s.mu.Unlock()
			return nil, err
		}
	}
	s.st.Channels[m.Channel] = &channelState{Manifest: doc.Manifest, Enrollments: doc.Enrollments}
	s.enrolled[m.Channel] = enrolledKeys(doc.Enrollments, l, s.log)
	err = s.save()
	devices := len(s.enrolled[m.Channel])
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if gs, err := s.cfg.Store.GC(ctx, store.DefaultKeep); err != nil {
		s.log.Warn("garbage collection failed", "err", err)
	} else {
		s.log.Debug("garbage collected", "stats", gs)
	}
	s.log.Info("release imported", "channel", m.Channel, "sequence", m.Sequence, "version", m.Version, "blocks", st.Blocks, "bytes", st.Bytes)
	if err := s.serveChannel(m.Channel); err != nil {
		return nil, err
	}
	return &ImportResult{Channel: m.Channel, Sequence: m.Sequence, Version: m.Version, Blocks: st.Blocks, Bytes: st.Bytes, Devices: devices}, nil
}

// adoptRoots takes the roots of a bundle newer than the seed's, checked
// like any node does (protocol's TrustedState.UpdateRoots).
func (s *Seed) adoptRoots(chain [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	have := s.trusted.Root.Version
	err := s.trusted.UpdateRoots(protocol.RootsAfter(chain, have, s.cfg.Limits), s.cfg.Now(), s.cfg.Limits)
	for _, b := range chain {
		if v := protocol.RootVersion(b, s.cfg.Limits); v > have && v <= s.trusted.Root.Version {
			s.st.Roots = append(s.st.Roots, b)
		}
	}
	if err != nil {
		return fmt.Errorf("seed: bundle trust root: %w", err)
	}
	return nil
}
