package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/content/store"
	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/node/gossip"
	"github.com/meshota/meshota/node/install"
	"github.com/meshota/meshota/node/statefile"
	"github.com/meshota/meshota/protocol"
)

// Traffic counts bytes received by source, cumulatively.
type Traffic struct{ LAN, Seed, Peer uint64 }

// Retainer keeps the blocks of the releases a device holds and drops the
// rest; content/store.Store implements it.
type Retainer interface {
	Pin(ctx context.Context, p store.Pin) error
	GC(ctx context.Context, keep int) (store.GCStats, error)
}

// Config is what an agent needs. Fields without a default are required.
type Config struct {
	Channel  string
	StateDir string
	// InitialRoot is the signed trust root to start from when the state
	// directory has none yet (trust on first use, from the publisher).
	InitialRoot []byte
	DeviceKey   *crypto.DeviceKey
	SigningKey  *crypto.SigningKey // signs status reports; its ID is the device ID
	Install     *install.Dir
	Host        host.Host
	Gossip      *gossip.Service
	// Store holds verified blocks; the exchange serves them to peers.
	Store content.BlockStore
	// Retain, if set, pins every release the device fetched and garbage-
	// collects what the last two of the channel do not need, so the store
	// stays bounded on a long-lived device.
	Retain Retainer
	// Network fetches blocks from peers (boxo blockservice over bitswap).
	Network content.BlockSource
	// FreeSpace reports the bytes free for the store; optional. With it the
	// agent checks before a download that the release fits, and says so
	// clearly when it does not (StoreFreeSpace makes one for a directory).
	FreeSpace func() (uint64, error)
	// Traffic reports bytes received so far by source; optional.
	Traffic func() Traffic
	// Limits bound what peers can make the agent accept; zero values mean
	// protocol.DefaultLimits.
	Limits protocol.Limits
	// CatchupInterval is how often the agent asks connected peers for a
	// newer manifest, besides asking every new peer once (default 30 s).
	CatchupInterval time.Duration
	// ReportInterval is how often the latest status report is repeated
	// (default 5 minutes; never faster than gossip's repeat window).
	ReportInterval time.Duration
	Assemble       content.AssembleOptions
	// Plain makes the device keep plaintext only of the releases it
	// installs (content.AssembleOptions.PlaintextOnly: no chunk block in
	// Store; the staging tree is the record), copy what the installed
	// releases share from their trees, and serve its neighbours chunk
	// blocks sealed again from plaintext: the agent adds to Plain a map
	// of the release it assembles and of each release it keeps installed
	// (current, previous), and removes each before its directory goes.
	// It must be the set the exchange serves from (exchange.Config.Plain).
	// Releases outside the rollout are still fetched into Store whole
	// (ciphertext: the device has no key for them). nil: ciphertext only.
	Plain  *content.ChunkMaps
	Now    func() time.Time
	Logger *slog.Logger
}

// Event is an observable change of the agent's state, for tests and logs.
type Event struct {
	State    protocol.State
	Sequence uint64
	Version  string
	Err      error
}

// Agent is a running device daemon.
type Agent struct {
	cfg Config
	id  protocol.DeviceID
	log *slog.Logger

	mu      sync.Mutex
	st      *persisted
	trusted *protocol.TrustedState

	wake       chan struct{}
	status     *gossip.Topic
	runCtx     context.Context
	stopReport context.CancelFunc // repeats of the latest status report

	events chan Event

	// Alarms, repeated in every status report while they hold (under mu):
	// the accepted manifest expired with no newer one (frozen), and the
	// latest equivocation seen.
	frozen       bool
	equivocation *protocol.Equivocation
	lastReport   *protocol.StatusReport // the last one published
	accepted     chan struct{}          // a newer manifest was accepted

	fetchingRoots atomic.Bool

	// With Config.Plain: the maps of the installed releases, by release
	// directory name (under plainMu), and the same maps as a set for
	// Assemble's Previous (without the staging map).
	plainMu   sync.Mutex
	plainMaps map[string]*content.ChunkMap
	installed content.ChunkMaps
}

// New loads the agent's state and checks its configuration. It does not
// touch the network until Run.
func New(cfg Config) (*Agent, error) {
	switch {
	case cfg.Channel == "", cfg.StateDir == "", cfg.DeviceKey == nil, cfg.SigningKey == nil,
		cfg.Install == nil, cfg.Host == nil, cfg.Gossip == nil, cfg.Store == nil, cfg.Network == nil:
		return nil, fmt.Errorf("%w: channel, state dir, device and signing keys, install dir, host, gossip, store and network are required", ErrConfig)
	}
	if err := protocol.ValidateChannel(cfg.Channel); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReportInterval == 0 {
		cfg.ReportInterval = 5 * time.Minute
	}
	if cfg.CatchupInterval == 0 {
		cfg.CatchupInterval = 30 * time.Second
	}
	st, err := loadState(cfg.StateDir)
	if errors.Is(err, statefile.ErrCorrupt) {
		cfg.Logger.Error("agent state damaged; rebuilding it from the install directory", "err", err)
		st, err = rebuildState(cfg.StateDir, cfg.Install)
	}
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:      cfg,
		id:       protocol.DeviceIDOf(cfg.SigningKey.Public()),
		st:       st,
		wake:     make(chan struct{}, 1),
		accepted: make(chan struct{}, 1),
		events:   make(chan Event, 64),

		plainMaps: map[string]*content.ChunkMap{},
	}
	a.log = cfg.Logger.With("device", a.id.String(), "channel", cfg.Channel)
	if len(st.Roots) == 0 {
		if cfg.InitialRoot == nil {
			return nil, ErrNoRoot
		}
		st.Roots = [][]byte{cfg.InitialRoot}
	}
	root, err := protocol.VerifyRootChain(st.Roots, cfg.Limits)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.trusted = protocol.NewTrustedState(root)
	if st.Mark != nil {
		a.trusted.Channels[cfg.Channel] = *st.Mark
	}
	if err := st.save(cfg.StateDir); err != nil {
		return nil, err
	}
	return a, nil
}

// ID is the device's ID.
func (a *Agent) ID() protocol.DeviceID { return a.id }

// Events delivers the agent's state changes. It is buffered; events are
// dropped when nobody reads.
func (a *Agent) Events() <-chan Event { return a.events }

// Run joins the channel's topics, serves catch-up requests, and installs
// what is announced until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	manifests, err := a.cfg.Gossip.Join(protocol.ManifestTopic(a.cfg.Channel), a.validateManifestGossip)
	if err != nil {
		return err
	}
	defer manifests.Close()
	if a.status, err = a.cfg.Gossip.Join(protocol.StatusTopic(a.cfg.Channel), a.validateStatusGossip); err != nil {
		return err
	}
	defer a.status.Close()
	a.serveCatchup()
	defer a.stopServing()

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.mu.Lock()
	a.runCtx = ctx
	a.mu.Unlock()
	wg.Add(3)
	go func() {
		defer wg.Done()
		a.receive(ctx, manifests)
	}()
	go func() {
		defer wg.Done()
		a.catchupLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		a.watchExpiry(ctx)
	}()
	a.loadMaps(ctx)
	a.signal() // resume whatever the state says
	return a.work(ctx)
}

// receive takes manifests that passed the gossip validator.
func (a *Agent) receive(ctx context.Context, t *gossip.Topic) {
	for {
		m, err := t.Next(ctx)
		if err != nil {
			return
		}
		a.offer(ctx, m.Data, m.From)
	}
}

// offer validates a signed manifest from any source (gossip, catch-up) and,
// if it is new, records it and wakes the worker.
func (a *Agent) offer(ctx context.Context, data []byte, from peer.ID) {
	a.mu.Lock()
	m, err := protocol.ValidateManifest(data, a.trusted, a.cfg.Channel, a.cfg.Now(), a.cfg.Limits)
	if err == nil {
		err = a.trusted.Accept(m)
	}
	if err != nil {
		a.mu.Unlock()
		a.logRefusal(err, from)
		if errors.Is(err, protocol.ErrRootAhead) && from != "" {
			go a.fetchRoots(ctx, from, data)
		}
		return
	}
	mark := a.trusted.Channels[a.cfg.Channel]
	a.st.Mark = &mark
	a.st.Manifest = data
	err = a.st.save(a.cfg.StateDir)
	// A newer manifest ends a freeze, and an equivocation about an
	// older sequence.
	cleared := a.frozen || a.equivocation != nil && a.equivocation.Sequence < m.Sequence
	if cleared {
		a.frozen = false
		if a.equivocation != nil && a.equivocation.Sequence < m.Sequence {
			a.equivocation = nil
		}
	}
	a.mu.Unlock()
	select {
	case a.accepted <- struct{}{}:
	default:
	}
	if err != nil {
		a.log.Error("cannot save state; the manifest will be taken again from the next announcement", "err", err)
		return
	}
	a.log.Info("manifest accepted", "sequence", m.Sequence, "version", m.Version, "from", from)
	if cleared {
		a.raise()
	}
	a.signal()
}

func (a *Agent) logRefusal(err error, from peer.ID) {
	var eq *protocol.EquivocationError
	switch {
	case errors.As(err, &eq) && eq.Accepted == [32]byte{}:
		// The mark was rebuilt after a damaged state file: the running
		// release's manifest is simply not known any more.
		a.log.Debug("manifest of the running release after a state rebuild", "from", from)
	case errors.Is(err, protocol.ErrDuplicate), errors.Is(err, protocol.ErrStaleSequence):
		a.log.Debug("manifest not newer", "from", from, "err", err)
	case errors.As(err, &eq):
		a.equivocated(eq, from)
	default:
		a.log.Warn("manifest refused", "from", from, "err", err)
	}
}

// validateManifestGossip is the manifest topic's validator: only what this
// node would accept itself goes further. An exact duplicate of the manifest
// already accepted is passed on (it is a re-announcement, for peers that
// missed it; gossip's repeat window bounds the cost); stale, expired or
// not-yet-checkable messages are dropped without penalty; forgeries and
// malformed or oversized messages are rejected, which lowers the sender's
// score.
func (a *Agent) validateManifestGossip(_ context.Context, from peer.ID, data []byte) gossip.Verdict {
	a.mu.Lock()
	_, err := protocol.ValidateManifest(data, a.trusted, a.cfg.Channel, a.cfg.Now(), a.cfg.Limits)
	ctx := a.runCtx
	a.mu.Unlock()
	if eq := (*protocol.EquivocationError)(nil); errors.As(err, &eq) && eq.Accepted != ([32]byte{}) {
		a.equivocated(eq, from)
	}
	if errors.Is(err, protocol.ErrRootAhead) && ctx != nil && a.fetchingRoots.CompareAndSwap(false, true) {
		// Signed under a trust root we do not have yet: ask the peer that
		// forwarded it (it accepted it, so it has the chain).
		go func() {
			defer a.fetchingRoots.Store(false)
			a.fetchRoots(ctx, from, data)
		}()
	}
	return verdict(err)
}

func verdict(err error) gossip.Verdict {
	switch {
	case err == nil, errors.Is(err, protocol.ErrDuplicate):
		return gossip.Accept
	case protocol.Penalises(err):
		return gossip.Reject
	}
	return gossip.Ignore
}

func (a *Agent) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *Agent) emit(e Event) {
	select {
	case a.events <- e:
	default:
	}
}
