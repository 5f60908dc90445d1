package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

var loopback = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

func TestIdentityPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.key")
	ctx := context.Background()
	h1, err := New(ctx, Config{IdentityPath: path, ListenAddrs: loopback})
	if err != nil {
		t.Fatal(err)
	}
	id := h1.ID()
	h1.Close()
	h2, err := New(ctx, Config{IdentityPath: path, ListenAddrs: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	if h2.ID() != id {
		t.Fatalf("peer ID changed across restarts: %s then %s", id, h2.ID())
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, Config{IdentityPath: path, ListenAddrs: loopback}); !errors.Is(err, ErrKeyFilePermissions) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable key: err = %v", err)
	}
}

func waitConnected(t *testing.T, a *Host, b *Host, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for a.Network().Connectedness(b.ID()) != network.Connected {
		if time.Now().After(deadline) {
			t.Fatalf("%s not connected to %s after %v", a.ID(), b.ID(), d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBootstrapConnectsAndReconnects(t *testing.T) {
	ctx := context.Background()
	for _, proto := range []string{"tcp", "quic-v1"} {
		t.Run(proto, func(t *testing.T) {
			seed, err := New(ctx, Config{ListenAddrs: loopback})
			if err != nil {
				t.Fatal(err)
			}
			defer seed.Close()
			var boot []string
			for _, a := range seed.P2PAddrs() {
				if strings.Contains(a, "/"+proto+"/") || strings.HasSuffix(strings.Split(a, "/p2p/")[0], "/"+proto) {
					boot = append(boot, a)
				}
			}
			if len(boot) == 0 {
				t.Fatalf("seed has no %s address: %v", proto, seed.P2PAddrs())
			}
			dev, err := New(ctx, Config{ListenAddrs: loopback, Bootstrap: boot})
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			if err := dev.Start(); err != nil {
				t.Fatal(err)
			}
			waitConnected(t, dev, seed, 10*time.Second)
			// Drop the connection: the device dials again by itself.
			if err := dev.Network().ClosePeer(seed.ID()); err != nil {
				t.Fatal(err)
			}
			waitConnected(t, dev, seed, 10*time.Second)
		})
	}
}

func TestBadBootstrapAddress(t *testing.T) {
	for _, a := range []string{"not a multiaddr", "/ip4/127.0.0.1/tcp/4001"} {
		if _, err := New(context.Background(), Config{ListenAddrs: loopback, Bootstrap: []string{a}}); err == nil {
			t.Errorf("bootstrap %q accepted", a)
		}
	}
}

func TestMDNSFindsLANPeers(t *testing.T) {
	ctx := context.Background()
	svc := "meshota-test-" + time.Now().Format("150405.000000")
	a, err := New(ctx, Config{ListenAddrs: loopback, MDNS: true, MDNSService: svc})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(ctx, Config{ListenAddrs: loopback, MDNS: true, MDNSService: svc})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !(a.IsLAN(b.ID()) && b.IsLAN(a.ID())) {
		if time.Now().After(deadline) {
			t.Skip("mDNS multicast did not reach across loopback on this machine; the notifee is tested directly below")
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitConnected(t, a, b, 10*time.Second)
}

func TestNotifeeMarksAndConnects(t *testing.T) {
	ctx := context.Background()
	a, err := New(ctx, Config{ListenAddrs: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(ctx, Config{ListenAddrs: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.IsLAN(b.ID()) {
		t.Fatal("unknown peer reported as LAN")
	}
	notifee{a, ctx}.HandlePeerFound(peerInfo(b))
	if !a.IsLAN(b.ID()) || len(a.LANPeers()) != 1 {
		t.Fatal("found peer not marked as LAN")
	}
	waitConnected(t, a, b, 10*time.Second)
	// Finding itself changes nothing.
	notifee{a, ctx}.HandlePeerFound(peerInfo(a))
	if a.IsLAN(a.ID()) {
		t.Fatal("host marked itself as a LAN peer")
	}
}

func peerInfo(h *Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

// TestNoLibp2pMetrics: libp2p would record its metrics in Prometheus's
// default registry, which meshota never serves, at a cost on every stream.
// (go-libp2p v0.51 gives its event bus a metrics tracer whatever the
// option; it counts events such as new connections, not streams.)
func TestNoLibp2pMetrics(t *testing.T) {
	a, err := New(context.Background(), Config{ListenAddrs: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(context.Background(), Config{ListenAddrs: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Connect(context.Background(), peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
		t.Fatal(err)
	}
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if name := f.GetName(); strings.HasPrefix(name, "libp2p_") && !strings.HasPrefix(name, "libp2p_eventbus_") {
			t.Errorf("libp2p records metric %s", name)
		}
	}
}
