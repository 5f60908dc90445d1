//go:build tools

// This file pins the field's dependencies in go.mod before every package
// that uses them exists, so that parallel work on several packages does not
// race on go.mod. Remove an import here once a real package imports it.
package main

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/fxamacker/cbor/v2"
	_ "github.com/ipfs/boxo/bitswap"
	_ "github.com/ipfs/boxo/bitswap/network/bsnet"
	_ "github.com/ipfs/boxo/blockservice"
	_ "github.com/ipfs/boxo/blockstore"
	_ "github.com/ipfs/boxo/chunker"
	_ "github.com/ipfs/go-block-format"
	_ "github.com/ipfs/go-cid"
	_ "github.com/ipfs/go-datastore"
	_ "github.com/ipfs/go-ds-flatfs"
	_ "github.com/ipld/go-car/v2"
	_ "github.com/libp2p/go-libp2p"
	_ "github.com/libp2p/go-libp2p-pubsub"
	_ "github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	_ "github.com/multiformats/go-multiaddr"
	_ "github.com/multiformats/go-multihash"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "golang.org/x/sync/errgroup"
	_ "gonum.org/v1/plot"
)
