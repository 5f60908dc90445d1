package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/node/agent"
	"github.com/meshota/meshota/node/exchange"
	"github.com/meshota/meshota/node/host"
	"github.com/meshota/meshota/node/install"
)

func init() {
	c := &command{
		Name:    "agent",
		Summary: "run a device's update agent",
		Usage: `Usage: meshota agent --dir D --channel C --install-dir DIR [--bootstrap MULTIADDR]...
                     [--install-cmd CMD] [--health-cmd CMD] [--health-timeout DUR]
                     [--listen MULTIADDR]... [--no-mdns] [--max-rate BYTES/S] [--config agent.toml]

Runs the device daemon: it finds peers on its LAN by mDNS and dials the
bootstrap peers, learns of releases over gossip (and asks peers on
reconnection), fetches its keyring shard and the encrypted blocks from the
nearest peers, verifies and decrypts them into DIR/staging, runs
--install-cmd with MESHOTA_RELEASE_DIR, MESHOTA_VERSION, MESHOTA_CHANNEL and
MESHOTA_SEQUENCE set, switches DIR/current atomically, runs --health-cmd, and
rolls back if it fails. It serves every block it holds to its peers.
Bootstrap peers are counted as the seed in status reports.

Example:
  meshota agent --dir ./dev1 --channel stable --install-dir ./dev1/app \
    --bootstrap /ip4/192.0.2.10/tcp/4001/p2p/12D3KooW... \
    --install-cmd 'systemctl restart myapp' --health-cmd 'curl -fsS localhost:8000/health'`,
	}
	c.Run = func(ctx context.Context, e *env, args []string) error {
		fs := newFlagSet(c, e)
		dir := fs.String("dir", "", "device directory from 'meshota device init' (required)")
		channel := fs.String("channel", "", "channel to follow (required)")
		installDir := fs.String("install-dir", "", "where releases are installed (required)")
		installCmd := fs.String("install-cmd", "", "shell command run on each new release before it goes live")
		healthCmd := fs.String("health-cmd", "", "shell command that must succeed after the switch, or the agent rolls back")
		healthTimeout := fs.Duration("health-timeout", time.Minute, "time limit of the health check")
		var boot, listen multiFlag
		fs.Var(&boot, "bootstrap", "peer multiaddr with /p2p/ ID to keep connected (repeatable)")
		fs.Var(&listen, "listen", "libp2p listen multiaddr (repeatable; default TCP and QUIC on random ports)")
		noMDNS := fs.Bool("no-mdns", false, "do not look for peers on the LAN")
		maxRate := fs.Int("max-rate", 0, "cap on block exchange bandwidth, bytes/s each way (0: none)")
		config := fs.String("config", "", "TOML file with flag values (flags override it)")
		logger := logFlags(fs)
		if err := parseArgs(fs, args); err != nil {
			return err
		}
		if err := applyConfig(fs, *config); err != nil {
			return err
		}
		if *dir == "" || *channel == "" || *installDir == "" {
			return fmt.Errorf("%w: --dir, --channel and --install-dir are required", errUsage)
		}
		log, err := logger(e.Stderr)
		if err != nil {
			return err
		}
		a, rt, err := startAgent(ctx, agentOptions{
			Dir: *dir, Channel: *channel, InstallDir: *installDir,
			Install: install.Hook{Command: *installCmd}, Health: install.Hook{Command: *healthCmd, Timeout: *healthTimeout},
			Bootstrap: boot, Listen: listen, MDNS: !*noMDNS,
			Cap: exchange.Rate{Up: *maxRate, Down: *maxRate},
		}, log)
		if err != nil {
			return err
		}
		defer rt.Close()
		fmt.Fprintf(e.Stdout, "device %s following %s; peer %s\n", a.ID(), *channel, rt.host.ID())
		err = a.Run(ctx)
		log.Info("agent stopped")
		return err
	}
	register(c)
}

type agentOptions struct {
	Dir, Channel, InstallDir string
	Install, Health          install.Hook
	Bootstrap, Listen        []string
	MDNS                     bool
	// Tuning for the demo and tests; zero means the defaults.
	CatchupInterval, ReportInterval time.Duration
	MDNSService                     string
	// Seeds are the peers counted as the seed; nil means the bootstrap peers.
	Seeds []peer.ID
	Cap   exchange.Rate
}

// startAgent loads a device directory and starts its network stack and
// agent (not yet running).
func startAgent(ctx context.Context, o agentOptions, log *slog.Logger) (*agent.Agent, *runtime, error) {
	sk, err := crypto.ReadSigningKeyFile(filepath.Join(o.Dir, deviceSigningKey))
	if err != nil {
		return nil, nil, fmt.Errorf("%w (is %s a device directory? create one with meshota device init)", err, o.Dir)
	}
	dk, err := crypto.ReadDeviceKeyFile(filepath.Join(o.Dir, deviceHPKEKey))
	if err != nil {
		return nil, nil, err
	}
	root, err := os.ReadFile(filepath.Join(o.Dir, deviceRoot))
	if err != nil {
		return nil, nil, fmt.Errorf("device trust root: %w", err)
	}
	boot, err := host.ParseAddrInfos(o.Bootstrap)
	if err != nil {
		return nil, nil, err
	}
	if len(o.Listen) == 0 {
		o.Listen = []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"}
	}
	inst, err := install.Open(o.InstallDir, install.Options{Channel: o.Channel, Install: o.Install, Health: o.Health, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	// A device keeps plaintext only of the releases it installs (its
	// installed trees and staging), and serves its neighbours their chunk
	// blocks sealed again from it (docs/CONTENT.md).
	plain := &content.ChunkMaps{}
	rt, err := startRuntime(ctx, runtimeConfig{Dir: o.Dir, Listen: o.Listen, Bootstrap: o.Bootstrap, MDNS: o.MDNS, MDNSService: o.MDNSService, Cap: o.Cap, Plain: plain, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	seeds := o.Seeds
	if seeds == nil {
		for _, b := range boot {
			seeds = append(seeds, b.ID)
		}
	}
	rt.ex.SetSeeds(seeds)
	a, err := agent.New(agent.Config{
		Channel: o.Channel, StateDir: o.Dir, InitialRoot: root,
		DeviceKey: dk, SigningKey: sk, Install: inst,
		Host: rt.host, Gossip: rt.gsp, Store: rt.store.Blockstore(), Network: rt.ex,
		Traffic: func() agent.Traffic {
			t := rt.ex.Traffic()
			return agent.Traffic{LAN: t.FromLAN, Seed: t.FromSeed, Peer: t.FromPeers}
		},
		FreeSpace:       agent.StoreFreeSpace(filepath.Join(o.Dir, "store")),
		Retain:          rt.store,
		Plain:           plain,
		CatchupInterval: o.CatchupInterval, ReportInterval: o.ReportInterval,
		Logger: log,
	})
	if err != nil {
		rt.Close()
		return nil, nil, err
	}
	return a, rt, nil
}
