package agent_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/node/gossip"
	"github.com/meshota/meshota/node/host"
	"github.com/meshota/meshota/node/publisher"
	"github.com/meshota/meshota/node/reqresp"
	"github.com/meshota/meshota/protocol"
	"github.com/meshota/meshota/protocol/codec"
)

// logRecord is one line an agent logged, with its attributes.
type logRecord struct {
	msg   string
	attrs map[string]any
}

// logTap is an slog.Handler that keeps every record, for tests that wait
// for what an agent says.
type logTap struct {
	mu      sync.Mutex
	records []logRecord
	changed chan struct{} // closed and replaced at every record
	attrs   []slog.Attr
	shared  *logTap
}

func newLogTap() *logTap {
	t := &logTap{changed: make(chan struct{})}
	t.shared = t
	return t
}

func (t *logTap) Enabled(context.Context, slog.Level) bool { return true }
func (t *logTap) WithGroup(string) slog.Handler            { return t }
func (t *logTap) WithAttrs(as []slog.Attr) slog.Handler {
	return &logTap{attrs: append(slices.Clone(t.attrs), as...), shared: t.shared}
}

func (t *logTap) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{msg: r.Message, attrs: map[string]any{}}
	for _, a := range t.attrs {
		rec.attrs[a.Key] = a.Value.Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.Any()
		return true
	})
	s := t.shared
	s.mu.Lock()
	s.records = append(s.records, rec)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

// waitFor returns the first record that match accepts, waiting for it.
func (t *logTap) waitFor(tb testing.TB, what string, timeout time.Duration, match func(logRecord) bool) logRecord {
	tb.Helper()
	deadline := time.After(timeout)
	for seen := 0; ; {
		t.mu.Lock()
		recs, changed := t.records[seen:], t.changed
		t.mu.Unlock()
		for _, r := range recs {
			if match(r) {
				return r
			}
		}
		seen += len(recs)
		select {
		case <-changed:
		case <-deadline:
			tb.Fatalf("no log record %s within %v", what, timeout)
		}
	}
}

// attacker is a peer that offers one crafted manifest to whoever connects,
// by catch-up (the answer to "latest manifest?") and over gossip, with a
// plain gossipsub that checks nothing.
type attacker struct {
	h     *host.Host
	topic *pubsub.Topic
}

func newAttacker(t *testing.T, ctx context.Context, channel string, manifest []byte) *attacker {
	t.Helper()
	h, topic := gossipPeer(t, ctx, channel, nil)
	// It answers every catch-up request with its manifest, whatever the
	// asker has (an honest peer answers only with something newer).
	reqresp.Serve(h, protocol.ProtocolLatestManifest, 512, nil, func(context.Context, peer.ID, []byte) ([]byte, error) {
		return (&protocol.LatestManifestResponse{Manifest: manifest}).Encode()
	})
	return &attacker{h: h, topic: topic}
}

// gossipPeer is a host on loopback with a plain gossipsub (flood publish,
// no scoring) subscribed to channel's manifest topic; validate, if not
// nil, decides what it forwards.
func gossipPeer(t *testing.T, ctx context.Context, channel string, validate pubsub.ValidatorEx) (*host.Host, *pubsub.Topic) {
	t.Helper()
	h, err := host.New(ctx, host.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithFloodPublish(true))
	if err != nil {
		t.Fatal(err)
	}
	if validate != nil {
		if err := ps.RegisterTopicValidator(protocol.ManifestTopic(channel), validate); err != nil {
			t.Fatal(err)
		}
	}
	topic, err := ps.Join(protocol.ManifestTopic(channel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topic.Subscribe(); err != nil {
		t.Fatal(err)
	}
	return h, topic
}

// tappedFleet is a fleet of one device connected to the seed, running,
// with its log in a tap.
func tappedFleet(t *testing.T) (*fleet, *device, *logTap) {
	f := newFleet(t, 1)
	d := f.devices[0]
	tap := newLogTap()
	f.startLogged(d, "true", slog.New(tap))
	connect(t, d.n, f.seedN)
	return f, d, tap
}

// stolenReleaseKey reads the publisher's release key, as an attacker who
// stole it would use it.
func stolenReleaseKey(t *testing.T, pub *publisher.Publisher) *crypto.SigningKey {
	t.Helper()
	k, err := crypto.ReadSigningKeyFile(filepath.Join(pub.Dir(), "keys", "release.key"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// craft decodes a genuine signed manifest, changes it and signs it with
// key. Like an attacker, it encodes the payload itself, without the
// checks of protocol.SignManifest.
func craft(t *testing.T, genuine []byte, key *crypto.SigningKey, change func(*protocol.Manifest)) []byte {
	t.Helper()
	m, err := protocol.DecodeManifest(genuine, protocol.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	c := *m
	change(&c)
	c.Created, c.Expires = c.Created.Truncate(time.Second).UTC(), c.Expires.Truncate(time.Second).UTC()
	payload, err := codec.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	env, err := crypto.Sign(protocol.ManifestPayloadType, payload, key)
	if err != nil {
		t.Fatal(err)
	}
	data, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestManifestAttacksOnRealNodes mounts each manifest attack of
// docs/SECURITY.md against a real agent that runs release 2: a peer offers
// the crafted manifest by catch-up as soon as it connects and publishes it
// on the channel's gossip topic. The agent refuses it for the right
// reason, gossip penalises the sender where the attack is the sender's
// fault, nothing is installed, an equivocation raises the seed's
// fleet-wide alarm, and the next genuine release still installs.
func TestManifestAttacksOnRealNodes(t *testing.T) {
	f, d, tap := tappedFleet(t)
	ctx := f.ctx
	r1 := f.ship(f.pub.Publish(ctx, publisher.Request{Channel: f.channel, Version: "1.0.0", Source: writeTree(t, 11, 64<<10)}))
	waitFor(t, f.devices, r1.Sequence, protocol.StateInstalled, 60*time.Second)
	r2 := f.ship(f.pub.Publish(ctx, publisher.Request{Channel: f.channel, Version: "2.0.0", Source: writeTree(t, 12, 64<<10)}))
	waitFor(t, f.devices, r2.Sequence, protocol.StateInstalled, 60*time.Second)

	stolen := stolenReleaseKey(t, f.pub)
	forger, err := crypto.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	next := func(m *protocol.Manifest) { m.Sequence, m.Supersedes, m.Version = r2.Sequence+1, r2.Sequence, "6.6.6" }
	cases := []struct {
		name      string
		manifest  []byte
		want      error
		penalised bool // gossip lowers the sender's score
		check     func(t *testing.T, a *attacker)
	}{
		{"forged signature", craft(t, r2.Manifest, forger, next), protocol.ErrThresholdNotMet, true, nil},
		{"rollback to an older sequence", r1.Manifest, protocol.ErrStaleSequence, false, nil},
		{"expired manifest", craft(t, r2.Manifest, stolen, func(m *protocol.Manifest) {
			next(m)
			m.Created, m.Expires = now.Add(-2*time.Hour), now.Add(-time.Hour)
		}), protocol.ErrExpired, false, nil},
		{"another channel's manifest on this topic", craft(t, r2.Manifest, stolen, func(m *protocol.Manifest) {
			next(m)
			m.Channel = "beta"
		}), protocol.ErrWrongChannel, true, nil},
		{"endless data: huge declared size", craft(t, r2.Manifest, stolen, func(m *protocol.Manifest) {
			next(m)
			m.Size, m.BlockBytes = 1<<60, 1<<60
		}), protocol.ErrLimitExceeded, true, nil},
		{"equivocation with a stolen key", craft(t, r2.Manifest, stolen, func(m *protocol.Manifest) { m.Version = "2.0.1" }),
			// Not penalised: an honest peer that accepted the other
			// manifest first forwards it in good faith.
			protocol.ErrEquivocation, false, func(t *testing.T, a *attacker) {
				// The device reports it; the seed raises the alarm.
				deadline := time.Now().Add(30 * time.Second)
				for {
					snap := f.seed.Aggregator().Snapshot()
					if len(snap.Channels) == 1 && len(snap.Channels[0].Equivocations) == 1 {
						e := snap.Channels[0].Equivocations[0]
						if e.Sequence != r2.Sequence || !slices.Equal(e.Devices, []string{d.a.ID().String()}) {
							t.Fatalf("alarm %+v", e)
						}
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("no equivocation alarm at the seed: %+v", snap)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newAttacker(t, ctx, f.channel, c.manifest)
			connect(t, &node{h: a.h}, d.n)
			rec := tap.waitFor(t, fmt.Sprintf("refusing the manifest of %s", a.h.ID()), 30*time.Second, func(r logRecord) bool {
				err, _ := r.attrs["err"].(error)
				return fmt.Sprint(r.attrs["from"]) == a.h.ID().String() && err != nil && errors.Is(err, c.want)
			})
			t.Logf("agent: %s: %v", rec.msg, rec.attrs["err"])
			if c.penalised {
				// Published until the device's score of the sender drops
				// (a publish before the topic's peers are known reaches
				// nobody).
				deadline := time.Now().Add(20 * time.Second)
				for {
					pctx, cancel := context.WithTimeout(ctx, time.Second)
					err := a.topic.Publish(pctx, c.manifest, pubsub.WithReadiness(pubsub.MinTopicSize(1)))
					cancel()
					if err != nil && pctx.Err() == nil {
						t.Fatal(err)
					}
					if score, known := d.n.g.Scores()[a.h.ID()]; known && score < 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the device does not score the attacker below 0: %v", d.n.g.Scores())
					}
					time.Sleep(250 * time.Millisecond)
				}
			}
			if c.check != nil {
				c.check(t, a)
			}
			if got := hookLog(t, d); got != "1 1.0.0 0\n2 2.0.0 0\n" {
				t.Fatalf("install hook log %q: something other than the genuine releases ran", got)
			}
		})
	}
	// The genuine release after the attacks installs.
	r3 := f.ship(f.pub.Publish(ctx, publisher.Request{Channel: f.channel, Version: "3.0.0", Source: writeTree(t, 13, 64<<10)}))
	waitFor(t, f.devices, r3.Sequence, protocol.StateInstalled, 60*time.Second)
	if got := hookLog(t, d); !strings.HasSuffix(got, "3 3.0.0 0\n") {
		t.Fatalf("install hook log %q", got)
	}
}

// TestFrozenDeviceIsReported: a device whose accepted manifest expires
// with nothing newer (whoever withholds the re-signed manifest) says so in
// its log and its status reports, and the seed lists it as frozen until a
// newer manifest arrives (docs/SECURITY.md row 3).
func TestFrozenDeviceIsReported(t *testing.T) {
	f, d, tap := tappedFleet(t)
	ctx := f.ctx
	frozen := func() []string {
		for _, ch := range f.seed.Aggregator().Snapshot().Channels {
			if ch.Channel == f.channel {
				return ch.Frozen
			}
		}
		return nil
	}
	waitFrozen := func(want []string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !slices.Equal(frozen(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("the seed lists %v as frozen, want %v", frozen(), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	r1 := f.ship(f.pub.Publish(ctx, publisher.Request{Channel: f.channel, Version: "1.0.0", Source: writeTree(t, 21, 64<<10), Expires: 6 * time.Second}))
	m1, err := protocol.DecodeManifest(r1.Manifest, protocol.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, f.devices, r1.Sequence, protocol.StateInstalled, 60*time.Second)
	waitFrozen(nil) // the installed report, before expiry
	rec := tap.waitFor(t, "about the expired manifest", 30*time.Second, func(r logRecord) bool { return strings.Contains(r.msg, "has expired") })
	if now := time.Now(); now.Before(m1.Expires) {
		t.Fatalf("frozen alarm at %v, before the manifest expired at %v", now, m1.Expires)
	}
	t.Logf("agent: %s", rec.msg)
	waitFrozen([]string{d.a.ID().String()})
	// A newer manifest ends the freeze.
	r2 := f.ship(f.pub.Publish(ctx, publisher.Request{Channel: f.channel, Version: "2.0.0", Source: writeTree(t, 22, 64<<10)}))
	waitFor(t, f.devices, r2.Sequence, protocol.StateInstalled, 60*time.Second)
	waitFrozen(nil)
}

// TestSybilsCannotEclipseABootstrappedDevice surrounds a device with
// sybil peers that withhold everything (they join the manifest topic and
// forward nothing, answer no catch-up and serve no block), and cuts its
// connection to the seed once, as connection pressure would. Its
// bootstrap peer is protected and redialled, so the release still arrives,
// every byte of it from the seed (docs/SECURITY.md row 14).
func TestSybilsCannotEclipseABootstrappedDevice(t *testing.T) {
	const sybils = 12
	f := newFleet(t, 0)
	ctx := f.ctx
	d := f.newDevice(true)
	seedAddr := fmt.Sprintf("%s/p2p/%s", f.seedN.h.Addrs()[0], f.seedN.h.ID())
	d.n = newNodeHost(t, ctx, host.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: []string{seedAddr}},
		gossip.Options{RepeatWindow: time.Second, ScoreInspectPeriod: 200 * time.Millisecond}, filepath.Join(t.TempDir(), "store"))
	d.n.ex.SetSeeds([]peer.ID{f.seedN.h.ID()})
	for range sybils {
		h, _ := gossipPeer(t, ctx, f.channel, func(context.Context, peer.ID, *pubsub.Message) pubsub.ValidationResult {
			return pubsub.ValidationIgnore // withhold everything
		})
		connect(t, &node{h: h}, d.n)
	}
	if err := d.n.h.Start(); err != nil { // dials the seed
		t.Fatal(err)
	}
	f.start(d, "true")
	seedID := f.seedN.h.ID()
	waitConnected := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for d.n.h.Network().Connectedness(seedID) != network.Connected {
			if time.Now().After(deadline) {
				t.Fatal("the device is not connected to its bootstrap peer")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitConnected()
	if !d.n.h.ConnManager().IsProtected(seedID, "bootstrap") {
		t.Fatal("the bootstrap peer is not protected from the connection manager")
	}
	if err := d.n.h.Network().ClosePeer(seedID); err != nil {
		t.Fatal(err)
	}
	waitConnected()
	src := writeTree(t, 31, 256<<10)
	r := f.ship(f.pub.Publish(ctx, publisher.Request{Channel: f.channel, Version: "1.0.0", Source: src}))
	f.devices = []*device{d}
	waitFor(t, f.devices, r.Sequence, protocol.StateInstalled, 60*time.Second)
	sameTree(t, src, d.inst.CurrentPath())
	tr := d.n.ex.Traffic()
	if tr.FromSeed == 0 || tr.FromPeers != 0 || tr.FromLAN != 0 {
		t.Fatalf("traffic %+v: every byte should come from the seed", tr)
	}
	t.Logf("%d sybils among %d peers; %d bytes from the seed", sybils, len(d.n.h.Network().Peers()), tr.FromSeed)
}
