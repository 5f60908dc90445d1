package gossip_test

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/node/gossip"
	"github.com/meshota/meshota/node/publisher"
	"github.com/meshota/meshota/protocol"
)

// BenchmarkManifestSpread publishes one validly signed manifest (from a
// real node/publisher) into 500 real node/gossip services over mocknet,
// each link 20 ms one way, each node linked to about 20 random others, every
// node validating it with protocol.ValidateManifest against its own trusted
// state, as agents do. It reports the time until the last node accepted it
// against the ideal: the connection graph's diameter × the link latency
// (x-ideal), and against the publisher's eccentricity (x-ecc, the best any
// protocol could do from that node). BENCH_QUICK=1: 100 nodes.
func BenchmarkManifestSpread(b *testing.B) {
	n := 500
	if os.Getenv("BENCH_QUICK") != "" {
		n = 100
	}
	const degree, latency = 20, 20 * time.Millisecond
	manifest, root := signedManifest(b)
	var ratios, eccRatios, spreads []float64
	var diam, ecc int
	for i := range b.N {
		var spread time.Duration
		spread, diam, ecc = spreadOnce(b, uint64(i), n, degree, latency, manifest, root)
		spreads = append(spreads, spread.Seconds())
		ratios = append(ratios, spread.Seconds()/(float64(diam)*latency.Seconds()))
		eccRatios = append(eccRatios, spread.Seconds()/(float64(ecc)*latency.Seconds()))
	}
	b.ReportMetric(float64(n), "nodes")
	b.ReportMetric(float64(diam), "diameter")
	b.ReportMetric(median(spreads)*1000, "spread-ms")
	b.ReportMetric(median(ratios), "x-ideal")
	b.ReportMetric(median(eccRatios), "x-ecc")
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// signedManifest publishes a small release with a real publisher and returns
// its signed manifest and the trust root devices start from.
func signedManifest(b *testing.B) ([]byte, *crypto.Root) {
	dir := b.TempDir()
	p, err := publisher.Init(filepath.Join(dir, "pub"), publisher.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	sk, err := crypto.GenerateSigningKey()
	if err != nil {
		b.Fatal(err)
	}
	dk, err := crypto.GenerateDeviceKey(crypto.KEMX25519)
	if err != nil {
		b.Fatal(err)
	}
	en, err := protocol.NewEnrollment(sk, dk, "dev", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.AddDevice("stable", en); err != nil {
		b.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "app.bin"), []byte("firmware"), 0o644)
	r, err := p.Publish(context.Background(), publisher.Request{Channel: "stable", Version: "1.0.0", Source: src})
	if err != nil {
		b.Fatal(err)
	}
	env, err := crypto.ParseEnvelope(p.Roots()[0], 64<<10)
	if err != nil {
		b.Fatal(err)
	}
	root, err := crypto.VerifyInitialRoot(env, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return r.Manifest, root
}

// spreadOnce builds the network, publishes from node 0 and returns the time
// until every node accepted the manifest, the graph's diameter and node 0's
// eccentricity (both in hops).
func spreadOnce(b *testing.B, seed uint64, n, degree int, latency time.Duration, manifest []byte, root *crypto.Root) (time.Duration, int, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	topic := protocol.ManifestTopic("stable")
	r := rand.New(rand.NewPCG(seed, 9))
	var (
		topics   = make([]*gossip.Topic, n)
		ids      = make([]peer.ID, n)
		accepted sync.WaitGroup
		mu       sync.Mutex
		last     time.Time
		arrivals []time.Time
		got      int
		rejected int
	)
	for i := range n {
		// Each node its own public IPv4 address: mocknet's generated IPv6
		// addresses share one /64, which gossipsub's IP-colocation score
		// (P6) would count as one crowded network and graylist.
		key, _, err := p2pcrypto.GenerateEd25519Key(crand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		h, err := mn.AddPeer(key, ma.StringCast(fmt.Sprintf("/ip4/198.18.%d.%d/tcp/4001", i/250, i%250+1)))
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = h.ID()
		g, err := gossip.New(ctx, h, gossip.Options{})
		if err != nil {
			b.Fatal(err)
		}
		state := protocol.NewTrustedState(root)
		var smu sync.Mutex
		t, err := g.Join(topic, func(_ context.Context, _ peer.ID, data []byte) gossip.Verdict {
			smu.Lock()
			defer smu.Unlock()
			_, err := protocol.ValidateManifest(data, state, "stable", time.Now(), protocol.Limits{})
			if err != nil && !errors.Is(err, protocol.ErrDuplicate) {
				mu.Lock()
				rejected++
				mu.Unlock()
				return gossip.Reject
			}
			return gossip.Accept
		})
		if err != nil {
			b.Fatal(err)
		}
		topics[i] = t
	}
	// A random graph: every node links to degree/2 others, so ~degree each.
	adj := make([]map[int]bool, n)
	for i := range adj {
		adj[i] = map[int]bool{}
	}
	for i := range n {
		for len(adj[i]) < degree/2 {
			j := r.IntN(n)
			if j == i || adj[i][j] {
				continue
			}
			adj[i][j], adj[j][i] = true, true
			l, err := mn.LinkPeers(ids[i], ids[j])
			if err != nil {
				b.Fatal(err)
			}
			l.SetOptions(mocknet.LinkOptions{Latency: latency})
			if _, err := mn.ConnectPeers(ids[i], ids[j]); err != nil {
				b.Fatal(err)
			}
		}
	}
	diam, ecc := 0, 0
	for i := range n {
		e := eccentricity(adj, i)
		if e < 0 {
			b.Fatal("the random graph is not connected")
		}
		diam = max(diam, e)
		if i == 0 {
			ecc = e
		}
	}
	// Wait until every node knows all its neighbours subscribe, let the
	// meshes form (1 s heartbeats), then listen on every node.
	for i, t := range topics {
		for len(t.Peers()) < len(adj[i]) {
			if ctx.Err() != nil {
				b.Fatal("a node never saw a subscriber")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	time.Sleep(3 * time.Second)
	accepted.Add(n - 1)
	for _, t := range topics[1:] {
		go func() {
			if _, err := t.Next(ctx); err != nil {
				return
			}
			mu.Lock()
			last = time.Now()
			arrivals = append(arrivals, last)
			got++
			mu.Unlock()
			accepted.Done()
		}()
	}
	start := time.Now()
	if err := topics[0].Publish(ctx, manifest); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { accepted.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		mu.Lock()
		defer mu.Unlock()
		b.Fatalf("the manifest reached %d of %d nodes (%d rejections)", got+1, n, rejected)
	}
	if rejected > 0 {
		b.Fatalf("%d nodes rejected a validly signed manifest", rejected)
	}
	var ms []float64
	for _, a := range arrivals {
		ms = append(ms, float64(a.Sub(start).Milliseconds()))
	}
	sort.Float64s(ms)
	b.Logf("arrivals ms: p10 %v p50 %v p90 %v p99 %v max %v", ms[len(ms)/10], ms[len(ms)/2], ms[len(ms)*9/10], ms[len(ms)*99/100], ms[len(ms)-1])
	return last.Sub(start), diam, ecc
}

// eccentricity is the largest hop count from i to any node, or -1 when some
// node cannot be reached.
func eccentricity(adj []map[int]bool, i int) int {
	dist := make([]int, len(adj))
	for k := range dist {
		dist[k] = -1
	}
	dist[i] = 0
	queue, far := []int{i}, 0
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for v := range adj[u] {
			if dist[v] < 0 {
				dist[v] = dist[u] + 1
				far = max(far, dist[v])
				queue = append(queue, v)
			}
		}
	}
	for _, d := range dist {
		if d < 0 {
			return -1
		}
	}
	return far
}
