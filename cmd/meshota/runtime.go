package main

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/content/store"
	"github.com/meshota/meshota/node/exchange"
	"github.com/meshota/meshota/node/gossip"
	"github.com/meshota/meshota/node/host"
)

// runtime is the network stack of a seed or an agent: host, gossip, store
// and block exchange, started in the order gossipsub needs.
type runtime struct {
	host  *host.Host
	gsp   *gossip.Service
	store *store.Store
	ex    *exchange.Exchange
}

type runtimeConfig struct {
	Dir       string // identity.key and store/ live here
	Listen    []string
	Bootstrap []string
	MDNS      bool
	// MDNSService separates fleets (and tests) on one LAN; default "meshota".
	MDNSService string
	// Cap limits the block exchange's bandwidth (bytes/s, 0 = none).
	Cap exchange.Rate
	// OncePerSite (seeds) sends each block about once per site.
	OncePerSite time.Duration
	// Server sizes the host for a seed: many devices connect to it at
	// once (a device's defaults admit 64 inbound connections).
	Server bool
	// Plain (agents) makes the exchange serve chunk blocks from these
	// releases' plaintext and keep fetched ones out of the store
	// (exchange.Config.Plain); the agent maintains the set.
	Plain  *content.ChunkMaps
	Logger *slog.Logger
}

// A seed's host limits: room for about a thousand devices at once.
const (
	serverConnLow     = 512
	serverConnHigh    = 1024
	serverMemoryLimit = 1 << 30
	serverFDLimit     = 4096
)

func startRuntime(ctx context.Context, c runtimeConfig) (*runtime, error) {
	hc := host.Config{
		IdentityPath: filepath.Join(c.Dir, "identity.key"),
		ListenAddrs:  c.Listen,
		Bootstrap:    c.Bootstrap,
		MDNS:         c.MDNS,
		MDNSService:  c.MDNSService,
		Logger:       c.Logger,
	}
	if c.Server {
		hc.ConnLow, hc.ConnHigh, hc.MaxConns = serverConnLow, serverConnHigh, serverConnHigh
		hc.MemoryLimit, hc.FDLimit = serverMemoryLimit, serverFDLimit
	}
	h, err := host.New(ctx, hc)
	if err != nil {
		return nil, err
	}
	r := &runtime{host: h}
	if r.gsp, err = gossip.New(ctx, h, gossip.Options{Logger: c.Logger}); err != nil {
		r.Close()
		return nil, err
	}
	if r.store, err = store.Open(filepath.Join(c.Dir, "store"), store.Options{Logger: c.Logger}); err != nil {
		r.Close()
		return nil, err
	}
	r.ex = exchange.New(ctx, exchange.Config{Host: h, Blockstore: r.store.Blockstore(), IsLAN: h.IsLAN, Cap: c.Cap, OncePerSite: c.OncePerSite, Plain: c.Plain, Logger: c.Logger})
	if err := h.Start(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *runtime) Close() error {
	var errs []error
	if r.ex != nil {
		errs = append(errs, r.ex.Close())
	}
	errs = append(errs, r.host.Close())
	if r.store != nil {
		errs = append(errs, r.store.Close())
	}
	return errors.Join(errs...)
}
