# meshota build. Every target works on a fresh machine with Go installed:
# modules come from the Go module proxy, tools are built from it.

GO        ?= go
BIN       := bin/meshota
PKGS      := ./...
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
STATICCHECK_VERSION ?= v0.8.2

.PHONY: all build test vet netdeps bench fuzz demo lint clean

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/meshota

# vet, then every test with the race detector; then the simulator's
# calibration against real nodes on its own: it compares times, so it runs
# away from the other packages' load and without the race detector's
# slowdown (sim/emulate's own tests cover that code under -race).
test: vet netdeps
	$(GO) test -race -timeout 25m $(PKGS)
	MESHOTA_CALIBRATE=1 $(GO) test -count=1 -run '^TestCalibrationAgainstEmulation$$' ./sim

vet:
	$(GO) vet $(PKGS)

# The network-namespace tests (node/netlab and its users) shape links with
# tc (iproute2) and drop packets with nftables. Install what is missing when
# root; without root those tests skip and say why.
netdeps:
	@if [ "$$(id -u)" = 0 ] && ! command -v nft >/dev/null 2>&1; then \
	  echo "installing nftables for the network-namespace tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables iproute2) >/dev/null || \
	    echo "warning: could not install nftables; loss tests will fail"; \
	fi

# Benchmarks print ratios against baselines measured in the same run
# (docs/PERFORMANCE.md lists every figure, its target and how it was
# measured). BENCH_QUICK=1 uses smaller inputs for a fast check. Packages
# run one after another; the real-binary benchmarks of cmd/meshota build
# network namespaces (node/netlab) and skip, saying why, unless root.
# They are benchmarks, not tests: make test never runs them.
bench:
	@if [ "$$(id -u)" != 0 ]; then echo "bench: not root: the network-namespace benchmarks of cmd/meshota (transfer, fleet, agent memory, delta) skip; run as root for them"; fi
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -timeout 15m $(PKGS)

# Runs every fuzz target of every package for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

demo: build
	./$(BIN) demo

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

clean:
	rm -rf bin
