package exchange

import (
	"context"
	"slices"
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// rawClient speaks bitswap to a server directly: one message out, the
// server's answers in.
type rawClient struct {
	net bsnetwork.BitSwapNetwork
	in  chan bsmsg.BitSwapMessage
}

func (c *rawClient) ReceiveMessage(_ context.Context, _ peer.ID, m bsmsg.BitSwapMessage) {
	c.in <- m
}
func (c *rawClient) ReceiveError(error)       {}
func (c *rawClient) PeerConnected(peer.ID)    {}
func (c *rawClient) PeerDisconnected(peer.ID) {}

func newRawClient(t *testing.T, servers ...*peerNode) *rawClient {
	t.Helper()
	h := newLoopbackHost(t)
	n := bsnet.NewFromIpfsHost(h)
	c := &rawClient{net: n, in: make(chan bsmsg.BitSwapMessage, 16)}
	n.Start(c)
	t.Cleanup(n.Stop)
	for _, s := range servers {
		if err := h.Connect(t.Context(), peer.AddrInfo{ID: s.h.ID(), Addrs: s.h.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// askHave sends server a want-have for c and returns what came back for
// it: "block", "have" or "dont-have".
func (r *rawClient) askHave(t *testing.T, server *peerNode, c cid.Cid) string {
	t.Helper()
	m := bsmsg.New(false)
	m.AddEntry(c, 1, pb.Message_Wantlist_Have, true)
	if err := r.net.SendMessage(t.Context(), server.h.ID(), m); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-r.in:
			switch {
			case slices.ContainsFunc(m.Blocks(), func(b blocks.Block) bool { return b.Cid().Equals(c) }):
				return "block"
			case slices.ContainsFunc(m.Haves(), c.Equals):
				return "have"
			case slices.ContainsFunc(m.DontHaves(), c.Equals):
				return "dont-have"
			}
		case <-timeout:
			t.Fatalf("no answer from %s for %s", server.h.ID(), c)
		}
	}
}

// TestSeedAnswersAWantHaveWithTheBlock: a seed (its site filter on)
// answers a want-have for a chunk it grants with the chunk itself, saving
// the want-block's round trip and bitswap's send tick; a block already
// granted to the asker's site is still refused; a device (no filter)
// answers HAVE, or every neighbour holding a block would send it.
func TestSeedAnswersAWantHaveWithTheBlock(t *testing.T) {
	blks := makeBlocks(t, 2, 512<<10) // the largest chunk
	seedStore, devStore := newStore(), newStore()
	for _, b := range blks {
		seedStore.Put(t.Context(), b)
		devStore.Put(t.Context(), b)
	}
	seed := newPeerWith(t, seedStore, Config{OncePerSite: 30 * time.Second, SiteOf: func(peer.ID) string { return "A" }})
	dev := newPeerWith(t, devStore, Config{})
	a1, a2 := newRawClient(t, seed, dev), newRawClient(t, seed)
	steps := []struct {
		name   string
		client *rawClient
		server *peerNode
		block  int
		want   string
	}{
		{"the seed grants a1 block 0: sent at once", a1, seed, 0, "block"},
		{"a2, same site, asks for block 0: its neighbour has it", a2, seed, 0, "dont-have"},
		{"a2 asks for block 1: granted, sent", a2, seed, 1, "block"},
		{"a device says it has block 0", a1, dev, 0, "have"},
	}
	for _, s := range steps {
		if got := s.client.askHave(t, s.server, blks[s.block].Cid()); got != s.want {
			t.Errorf("%s: got %s, want %s", s.name, got, s.want)
		}
	}
}
