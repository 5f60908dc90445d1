// Package exchange is meshota's block exchange: boxo's bitswap (client and
// server) over the node's libp2p host, behind boxo's blockservice, which
// verifies every received block against its CID and stores it in the
// node's blockstore before anyone sees it. The node serves every block it
// holds, installed or not.
//
// It also counts what crossed the wire, by source: the seed, peers on the
// node's LAN (found by mDNS), and other peers, which is what the agent's
// status reports and the seed-versus-peer figures are made of.
package exchange
