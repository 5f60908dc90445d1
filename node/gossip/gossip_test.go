package gossip

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

func newHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func connect(t *testing.T, a, b host.Host) {
	t.Helper()
	if err := a.Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// onlyGood accepts messages that start with "good", ignores "old" and
// rejects everything else: a stand-in for protocol's manifest validator.
func onlyGood(_ context.Context, _ peer.ID, data []byte) Verdict {
	switch {
	case bytes.HasPrefix(data, []byte("good")):
		return Accept
	case bytes.HasPrefix(data, []byte("old")):
		return Ignore
	}
	return Reject
}

func next(t *testing.T, tp *Topic, d time.Duration) (Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return tp.Next(ctx)
}

func TestMessageCrossesTwoHopsAndForgeriesDoNot(t *testing.T) {
	ctx := t.Context()
	hosts := []host.Host{newHost(t), newHost(t), newHost(t)}
	topics := make([]*Topic, len(hosts))
	for i, h := range hosts {
		s, err := New(ctx, h, Options{RepeatWindow: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if topics[i], err = s.Join("meshota/test", onlyGood); err != nil {
			t.Fatal(err)
		}
	}
	// A line: 0 - 1 - 2. Host 2 hears host 0 only through host 1.
	connect(t, hosts[0], hosts[1])
	connect(t, hosts[1], hosts[2])

	// The publisher's own validator refuses a forgery before it leaves.
	if err := topics[0].Publish(ctx, []byte("forged")); err == nil {
		t.Fatal("publishing a message the validator rejects succeeded")
	}
	// Re-announce until the far end hears it (the mesh forms in a heartbeat).
	actx, stop := context.WithCancel(ctx)
	defer stop()
	go topics[0].Announce(actx, []byte("good manifest"), 0)
	m, err := next(t, topics[2], 20*time.Second)
	if err != nil {
		t.Fatalf("two-hop delivery: %v", err)
	}
	if string(m.Data) != "good manifest" || m.From != hosts[1].ID() {
		t.Fatalf("got %q from %s, want %q from the middle host", m.Data, m.From, "good manifest")
	}
	stop()
	if err := topics[0].Publish(ctx, []byte("good second")); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := next(t, topics[2], 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) == "good second" {
			break
		}
		if string(m.Data) != "good manifest" {
			t.Fatalf("unexpected message %q", m.Data)
		}
	}
}

func TestFlooderIsPenalisedAndValidMessagesStillArrive(t *testing.T) {
	ctx := t.Context()
	honest, relay, flooder := newHost(t), newHost(t), newHost(t)
	var relayTopic, honestTopic *Topic
	var relaySvc *Service
	for i, h := range []host.Host{honest, relay} {
		s, err := New(ctx, h, Options{ScoreInspectPeriod: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		tp, err := s.Join("meshota/test", onlyGood)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			honestTopic = tp
		} else {
			relayTopic, relaySvc = tp, s
		}
	}
	// The flooder runs plain gossipsub with no validator, so it can send
	// what meshota nodes would never forward.
	fps, err := pubsub.NewGossipSub(ctx, flooder)
	if err != nil {
		t.Fatal(err)
	}
	ft, err := fps.Join("meshota/test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ft.Subscribe(); err != nil {
		t.Fatal(err)
	}
	connect(t, honest, relay)
	connect(t, flooder, relay)
	time.Sleep(1500 * time.Millisecond) // let meshes form

	for i := range 50 {
		if err := ft.Publish(ctx, []byte(fmt.Sprintf("forged %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := honestTopic.Publish(ctx, []byte("good release")); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := next(t, relayTopic, 20*time.Second)
		if err != nil {
			t.Fatalf("valid message did not arrive during the flood: %v", err)
		}
		if !bytes.HasPrefix(m.Data, []byte("good")) {
			t.Fatalf("relay delivered a rejected message %q", m.Data)
		}
		if string(m.Data) == "good release" {
			break
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		scores := relaySvc.Scores()
		f, ok := scores[flooder.ID()]
		if ok && f < scoreThresholds().GraylistThreshold {
			if h := scores[honest.ID()]; h < 0 {
				t.Fatalf("honest peer penalised too: %v", h)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("flooder score %v (known %v), want below graylist threshold %v", f, ok, scoreThresholds().GraylistThreshold)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestIgnoredMessagesAreNotDelivered(t *testing.T) {
	ctx := t.Context()
	a, b := newHost(t), newHost(t)
	var ta, tb *Topic
	for i, h := range []host.Host{a, b} {
		s, err := New(ctx, h, Options{})
		if err != nil {
			t.Fatal(err)
		}
		tp, err := s.Join("meshota/test", onlyGood)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			ta = tp
		} else {
			tb = tp
		}
		if _, err := s.Join("meshota/test", onlyGood); err == nil {
			t.Fatal("joining a topic twice succeeded")
		}
	}
	connect(t, a, b)
	time.Sleep(1500 * time.Millisecond)
	if err := ta.Publish(ctx, []byte("old news")); err == nil {
		t.Fatal("publishing an ignored message reported success")
	}
	if err := ta.Publish(ctx, []byte("good news")); err != nil {
		t.Fatal(err)
	}
	m, err := next(t, tb, 20*time.Second)
	if err != nil || string(m.Data) != "good news" {
		t.Fatalf("got %q, %v; want only the accepted message", m.Data, err)
	}
}

func TestReplayedValidMessageIsDeliveredOncePerWindow(t *testing.T) {
	ctx := t.Context()
	victim, replayer := newHost(t), newHost(t)
	s, err := New(ctx, victim, Options{RepeatWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tp, err := s.Join("meshota/test", onlyGood)
	if err != nil {
		t.Fatal(err)
	}
	rps, err := pubsub.NewGossipSub(ctx, replayer)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rps.Join("meshota/test")
	if err != nil {
		t.Fatal(err)
	}
	connect(t, replayer, victim)
	time.Sleep(1500 * time.Millisecond)
	for range 20 {
		if err := rt.Publish(ctx, []byte("good but replayed")); err != nil {
			t.Fatal(err)
		}
	}
	if err := rt.Publish(ctx, []byte("good and new")); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		m, err := next(t, tp, 20*time.Second)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, string(m.Data))
		if string(m.Data) == "good and new" {
			break
		}
	}
	if len(got) != 2 {
		t.Fatalf("delivered %q, want the replayed message once, then the new one", got)
	}
}

func TestSubscribersSeenWithoutJoining(t *testing.T) {
	ctx := t.Context()
	a, b := newHost(t), newHost(t)
	sa, err := New(ctx, a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := New(ctx, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Join("meshota/test", onlyGood); err != nil {
		t.Fatal(err)
	}
	connect(t, a, b)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := sa.Subscribers("meshota/test"); len(got) == 1 && got[0] == b.ID() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscribers seen by a host that did not join: %v, want [%s]", sa.Subscribers("meshota/test"), b.ID())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := sa.Subscribers("meshota/other"); len(got) != 0 {
		t.Fatalf("subscribers of an unused topic: %v", got)
	}
}
