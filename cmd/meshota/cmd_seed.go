package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshota/meshota/node/seed"
	"github.com/meshota/meshota/node/status"
)

func init() {
	c := &command{
		Name:    "seed",
		Summary: "run the publisher's seed node",
		Usage: `Usage: meshota seed --dir S [--root ROOT_FILE] [--listen MULTIADDR]... [--http ADDR]
                    [--admin ADDR] [--import release.car] [--config seed.toml]

Runs the seed node: it holds no publisher secret, only the trust root,
signed manifests, keyrings and encrypted blocks. It takes releases from the
publisher through its admin API (token in S/admin.token) or a CAR file,
announces them to the mesh, serves blocks, and shows the fleet's status on
--http (/api/status, /metrics, /healthz). --root is needed on first start.
Its libp2p addresses are printed and written to S/addrs, for devices'
--bootstrap.

Examples:
  meshota seed --dir ./seed --root ./publisher/roots/0001.root --listen /ip4/0.0.0.0/tcp/4001
  meshota seed --dir ./seed --import release.car`,
	}
	c.Run = func(ctx context.Context, e *env, args []string) error {
		fs := newFlagSet(c, e)
		dir := fs.String("dir", "", "seed state directory (required)")
		rootFile := fs.String("root", "", "the publisher's trust root (first start)")
		var listen multiFlag
		fs.Var(&listen, "listen", "libp2p listen multiaddr (repeatable; default TCP and QUIC on port 4001)")
		httpAddr := fs.String("http", "127.0.0.1:8080", "status and metrics address")
		adminAddr := fs.String("admin", "127.0.0.1:7070", "admin API address (keep it local)")
		importCAR := fs.String("import", "", "import this release bundle at start")
		announce := fs.Duration("announce-interval", 2*time.Minute, "how often manifests are re-announced")
		oncePerSite := fs.Duration("once-per-site", 30*time.Second, "send a block to one device per site (same NAT address or private /24) within this window; its neighbours get it over their LAN (0: off)")
		config := fs.String("config", "", "TOML file with flag values (flags override it)")
		logger := logFlags(fs)
		if err := parseArgs(fs, args); err != nil {
			return err
		}
		if err := applyConfig(fs, *config); err != nil {
			return err
		}
		if *dir == "" {
			return fmt.Errorf("%w: --dir is required", errUsage)
		}
		log, err := logger(e.Stderr)
		if err != nil {
			return err
		}
		if len(listen) == 0 {
			listen = multiFlag{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}
		}
		if err := os.MkdirAll(*dir, 0o700); err != nil {
			return err
		}
		var root []byte
		if *rootFile != "" {
			if root, err = os.ReadFile(*rootFile); err != nil {
				return fmt.Errorf("read trust root: %w", err)
			}
		}
		rt, err := startRuntime(ctx, runtimeConfig{Dir: *dir, Listen: listen, OncePerSite: *oncePerSite, Server: true, Logger: log})
		if err != nil {
			return err
		}
		defer rt.Close()
		s, err := seed.New(seed.Config{Dir: *dir, Store: rt.store, Host: rt.host, Gossip: rt.gsp, InitialRoot: root,
			AnnounceInterval: *announce, Served: func() uint64 { return rt.ex.Traffic().Served }, Logger: log})
		if errors.Is(err, seed.ErrNoRoot) {
			return fmt.Errorf("%w: start the seed once with --root ./publisher/roots/0001.root", err)
		}
		if err != nil {
			return err
		}
		token, err := seed.LoadOrCreateToken(filepath.Join(*dir, "admin.token"))
		if err != nil {
			return err
		}
		runErr := make(chan error, 1)
		go func() { runErr <- s.Run(ctx) }()
		if *importCAR != "" {
			f, err := os.Open(*importCAR)
			if err != nil {
				return err
			}
			res, err := s.Import(ctx, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("import %s: %w", *importCAR, err)
			}
			fmt.Fprintf(e.Stdout, "imported %s %s (sequence %d)\n", res.Channel, res.Version, res.Sequence)
		}
		statusSrv, err := serve(*httpAddr, status.Handler(s.Aggregator(), prometheus.NewRegistry(), nil))
		if err != nil {
			return err
		}
		defer statusSrv.Close()
		adminSrv, err := serve(*adminAddr, s.AdminHandler(token))
		if err != nil {
			return err
		}
		defer adminSrv.Close()
		addrs := rt.host.P2PAddrs()
		for _, a := range addrs {
			fmt.Fprintf(e.Stdout, "seed listening on %s\n", a)
		}
		// For scripts and devices' --bootstrap: one multiaddr a line.
		if err := os.WriteFile(filepath.Join(*dir, "addrs"), []byte(strings.Join(addrs, "\n")+"\n"), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "status on http://%s/api/status, admin API on %s (token in %s)\n",
			statusSrv.Addr, adminSrv.Addr, filepath.Join(*dir, "admin.token"))
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			return <-runErr
		case err := <-runErr:
			return err
		}
	}
	register(c)
}

// serve listens on addr (so that errors come back now) and serves h.
func serve(addr string, h http.Handler) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Addr: ln.Addr().String(), Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return srv, nil
}
