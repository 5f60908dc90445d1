package gossip

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Verdict is a validator's decision on one message.
type Verdict int

const (
	// Accept delivers the message and forwards it to the mesh.
	Accept Verdict = iota
	// Ignore drops the message without penalising the sender: duplicates,
	// stale but well-formed messages, messages we cannot judge yet.
	Ignore
	// Reject drops the message and counts it against the sender's score:
	// forgeries, malformed or oversized messages.
	Reject
)

func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accept"
	case Ignore:
		return "ignore"
	case Reject:
		return "reject"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// Validator judges a message received from a peer (or published locally,
// with from equal to the local peer). It must be safe for concurrent use.
type Validator func(ctx context.Context, from peer.ID, data []byte) Verdict

// Options configure the service. The zero value is usable.
type Options struct {
	// MaxMessageSize bounds every message (default 64 KiB; gossipsub's own
	// default is 1 MiB, far more than a manifest needs).
	MaxMessageSize int
	// TrustedNets lists networks whose many peers may share one IP address
	// (a site behind NAT, loopback in tests) without the IP-colocation
	// penalty. Loopback is always included.
	TrustedNets []*net.IPNet
	// Logger receives rejected-message reasons; nil discards.
	Logger *slog.Logger
	// RepeatWindow is how long identical bytes are dropped after one copy
	// was accepted (default 1 minute), whoever sends them. It bounds what
	// replaying a valid message can cost the mesh to one flood per window,
	// and Announce repeats no faster than it.
	RepeatWindow time.Duration
	// ScoreInspectPeriod, when positive, samples peer scores that often;
	// Scores returns the last sample.
	ScoreInspectPeriod time.Duration
}

// Service is a gossipsub instance bound to a host.
type Service struct {
	ps     *pubsub.PubSub
	recent *recentSet
	h      host.Host
	log    *slog.Logger

	mu     sync.Mutex
	scores map[peer.ID]float64
	topics map[string]*Topic
}

// DefaultMaxMessageSize is the default bound on one gossip message.
const DefaultMaxMessageSize = 64 << 10

// DefaultRepeatWindow is the default Options.RepeatWindow.
const DefaultRepeatWindow = time.Minute

// New starts gossipsub on h. Create it before connecting to peers: gossipsub
// learns of peers through connection notifications.
func New(ctx context.Context, h host.Host, o Options) (*Service, error) {
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.RepeatWindow == 0 {
		o.RepeatWindow = DefaultRepeatWindow
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{recent: newRecentSet(o.RepeatWindow), h: h, log: o.Logger, scores: map[peer.ID]float64{}, topics: map[string]*Topic{}}
	_, loop4, _ := net.ParseCIDR("127.0.0.0/8")
	_, loop6, _ := net.ParseCIDR("::1/128")
	whitelist := append([]*net.IPNet{loop4, loop6}, o.TrustedNets...)
	opts := []pubsub.Option{
		pubsub.WithMaxMessageSize(o.MaxMessageSize),
		// The seed's own announcements go to every peer it knows, not only
		// its mesh, so they arrive even before the mesh has formed.
		pubsub.WithFloodPublish(true),
		pubsub.WithPeerExchange(true),
		pubsub.WithPeerScore(scoreParams(whitelist), scoreThresholds()),
	}
	if o.ScoreInspectPeriod > 0 {
		opts = append(opts, pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(s.recordScores), o.ScoreInspectPeriod))
	}
	ps, err := pubsub.NewGossipSub(ctx, h, opts...)
	if err != nil {
		return nil, fmt.Errorf("gossip: start gossipsub: %w", err)
	}
	s.ps = ps
	return s, nil
}

func (s *Service) recordScores(m map[peer.ID]float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scores = m
}

// Scores returns the peers' scores as last sampled (see
// Options.ScoreInspectPeriod). The map is a copy.
func (s *Service) Scores() map[peer.ID]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[peer.ID]float64, len(s.scores))
	for p, v := range s.scores {
		out[p] = v
	}
	return out
}

// Subscribers lists the connected peers known to subscribe to topic,
// whether or not this node joined it: a seed that joins a channel's topic
// only when it first has a release can still tell who will hear it.
func (s *Service) Subscribers(topic string) []peer.ID { return s.ps.ListPeers(topic) }

// Topic is one joined topic with its validator and subscription.
type Topic struct {
	name  string
	t     *pubsub.Topic
	sub   *pubsub.Subscription
	owner *Service
}

// Message is an accepted message.
type Message struct {
	Data []byte
	// From is the peer that forwarded it to us (not necessarily its author).
	From peer.ID
	// Local is true for messages this node published itself.
	Local bool
}

// Join subscribes to topic, installing validate in gossipsub's validation
// pipeline: a message that validate does not Accept is neither delivered nor
// forwarded. Joining a topic twice is an error.
func (s *Service) Join(topic string, validate Validator) (*Topic, error) {
	s.mu.Lock()
	_, dup := s.topics[topic]
	s.mu.Unlock()
	if dup {
		return nil, fmt.Errorf("gossip: topic %q already joined", topic)
	}
	err := s.ps.RegisterTopicValidator(topic, pubsub.ValidatorEx(func(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		digest := sha256.Sum256(m.GetData())
		if s.recent.seen(digest) {
			return pubsub.ValidationIgnore
		}
		v := validate(ctx, from, m.GetData())
		switch v {
		case Accept:
			s.recent.add(digest)
			return pubsub.ValidationAccept
		case Reject:
			s.log.Warn("gossip message rejected", "topic", topic, "from", from, "bytes", len(m.GetData()))
			return pubsub.ValidationReject
		default:
			return pubsub.ValidationIgnore
		}
	}))
	if err != nil {
		return nil, fmt.Errorf("gossip: validator for %q: %w", topic, err)
	}
	t, err := s.ps.Join(topic)
	if err != nil {
		s.ps.UnregisterTopicValidator(topic)
		return nil, fmt.Errorf("gossip: join %q: %w", topic, err)
	}
	if err := t.SetScoreParams(topicScoreParams()); err != nil {
		t.Close()
		s.ps.UnregisterTopicValidator(topic)
		return nil, fmt.Errorf("gossip: score params for %q: %w", topic, err)
	}
	sub, err := t.Subscribe()
	if err != nil {
		t.Close()
		s.ps.UnregisterTopicValidator(topic)
		return nil, fmt.Errorf("gossip: subscribe %q: %w", topic, err)
	}
	tp := &Topic{name: topic, t: t, sub: sub, owner: s}
	s.mu.Lock()
	s.topics[topic] = tp
	s.mu.Unlock()
	return tp, nil
}

// Name returns the topic's name.
func (t *Topic) Name() string { return t.name }

// Next blocks until the next accepted message (including this node's own
// publications, marked Local) or until ctx ends.
func (t *Topic) Next(ctx context.Context) (Message, error) {
	m, err := t.sub.Next(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return Message{}, ctx.Err()
		}
		return Message{}, fmt.Errorf("%w: %v", ErrClosed, err)
	}
	return Message{Data: m.GetData(), From: m.ReceivedFrom, Local: m.Local}, nil
}

// Publish validates data with the topic's own validator and sends it to
// every known subscriber of the topic.
func (t *Topic) Publish(ctx context.Context, data []byte) error {
	if err := t.t.Publish(ctx, data); err != nil {
		return fmt.Errorf("gossip: publish on %q: %w", t.name, err)
	}
	return nil
}

// Peers lists the peers known to subscribe to the topic.
func (t *Topic) Peers() []peer.ID { return t.t.ListPeers() }

// Close leaves the topic.
func (t *Topic) Close() error {
	t.sub.Cancel()
	err := t.t.Close()
	t.owner.ps.UnregisterTopicValidator(t.name)
	t.owner.mu.Lock()
	delete(t.owner.topics, t.name)
	t.owner.mu.Unlock()
	return err
}

// Announce publishes data now and then again every interval until ctx ends,
// so that peers that missed it (gossipsub has no delivery guarantee, and a
// publish before the mesh forms reaches nobody) still receive it. The
// interval is raised to just over the repeat window: a repeat sooner than that
// would be dropped as a duplicate everywhere, including locally. Validators
// must therefore Accept a message identical to one already accepted.
func (t *Topic) Announce(ctx context.Context, data []byte, interval time.Duration) {
	interval = max(interval, t.owner.recent.window+t.owner.recent.window/10)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if err := t.Publish(ctx, data); err != nil && ctx.Err() == nil {
			t.owner.log.Debug("re-announce failed", "topic", t.name, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
