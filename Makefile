# netaiops: build, generate, lint, test, run.
# Tools are installed at pinned versions into .bin/ (never into go.mod).

SHELL := /bin/bash
GO ?= go
TOOLS := $(CURDIR)/.bin
export PATH := $(TOOLS):$(PATH)

BUF_VERSION := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPCURL_VERSION := v1.9.4
STATICCHECK_VERSION := v0.8.2

VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/netaiops/netaiops/agent.Version=$(VERSION) -X main.Version=$(VERSION)

BINARIES := netaiops-controller netaiops-agent netaiops-snmpsim netaiops-eval netaiopsctl

.PHONY: all build generate checkgenerate lint fmt test test-short run tools deps clean

# Debian packages the tests and the demo need: net-snmp's snmpd (the real
# device in end-to-end tests) and its tools, iproute2 for network namespaces,
# tcpdump to cross-check our capture-filter compiler.
APT_PACKAGES := snmpd snmp iproute2 tcpdump
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

all: build

build:
	@mkdir -p bin
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/ $(addprefix ./cmd/,$(BINARIES))

# --- tools, pinned, project-local ---------------------------------------------
$(TOOLS)/buf:
	GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(TOOLS)/grpcurl:
	GOBIN=$(TOOLS) $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# Installs missing Debian packages (apt-get) and the pinned Go tools.
deps: tools
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

tools: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc $(TOOLS)/grpcurl $(TOOLS)/staticcheck

# --- code generation ----------------------------------------------------------
generate: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc
	rm -rf gen/netaiops
	buf generate

# Fails when the committed gen/ differs from what the protos generate.
checkgenerate: generate
	@if [ -n "$$(git status --porcelain -- gen)" ]; then \
		echo "gen/ is stale: run 'make generate' and commit the result" >&2; \
		git status --porcelain -- gen >&2; git diff --stat -- gen >&2; exit 1; fi
	@echo "gen/ matches proto/"

lint: $(TOOLS)/buf $(TOOLS)/staticcheck
	buf lint
	buf format -d --exit-code
	$(GO) vet ./...
	staticcheck ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); \
		if [ -n "$$out" ]; then echo "gofmt needed: $$out" >&2; exit 1; fi

fmt: $(TOOLS)/buf
	buf format -w
	gofmt -w $$(git ls-files '*.go' | grep -v '^gen/')

# --- tests --------------------------------------------------------------------
# All tests. End-to-end tests need snmpd and root for network namespaces; they
# skip with a message when those are missing.
test: deps checkgenerate lint
	$(GO) test -race -count=1 -timeout 15m ./...

test-short:
	$(GO) test -short -count=1 ./...

# --- run ----------------------------------------------------------------------
# Starts the controller, the bundled SNMP device simulator and an agent that
# polls it, on loopback; Ctrl-C stops all three.
run: build $(TOOLS)/grpcurl
	@mkdir -p var
	@trap 'kill $$(jobs -p) 2>/dev/null; wait' INT TERM EXIT; \
	bin/netaiops-controller --listen 127.0.0.1:7443 --insecure --db var/controller.db & \
	bin/netaiops-snmpsim --listen 127.0.0.1:1161 & \
	sleep 1; \
	echo ""; \
	echo "controller listening on 127.0.0.1:7443 (plaintext, loopback)"; \
	echo "list issues:   bin/netaiopsctl --insecure issues list"; \
	echo "one issue:     bin/netaiopsctl --insecure issues get ID"; \
	echo "list agents:   bin/netaiopsctl --insecure agents list"; \
	echo "watching issues below (bin/netaiopsctl --insecure issues watch):"; \
	echo ""; \
	bin/netaiops-agent --config docs/examples/agent-demo.yaml & \
	sleep 2; bin/netaiopsctl --insecure --address 127.0.0.1:7443 issues watch

clean:
	rm -rf bin var

# --- detection quality and speed (agent/detect/anomaly) -------------------------
# eval-nab scores the agent's anomaly detection path (engine, scorer set,
# shipped defaults) on the Numenta Anomaly Benchmark: results go to
# var/nab/; the eval prints the in-sample, cross-validated and
# shipped-threshold scores and writes var/nab/thresholds.json; NAB's scorer
# then prints the NAB-optimised table and the one at the shipped threshold.
# bench-detect measures updates per second over 100 000 interleaved series
# (per second of wall time and of CPU time, for shared machines).
NAB_DIR ?= ../shared/nab
NABSCORE_DIR ?= ../shared/tools/nabscore

.PHONY: eval-nab eval-net bench-detect

# eval-net runs network-shaped series with injected, labelled faults
# (saturation, drop to ~0, level shift, memory leak, error bursts) at the
# agent's 10 s cadence through the agent's engine and shipped defaults, and
# prints recall, precision and time-to-detect per fault kind.
eval-net:
	@set -e; mkdir -p bin; $(GO) build -o bin/netaiops-eval ./cmd/netaiops-eval; bin/netaiops-eval net

eval-nab:
	@if [ ! -d "$(NAB_DIR)/data" ] || [ ! -d "$(NABSCORE_DIR)" ]; then \
		echo "eval-nab: skipped: no NAB data at $(NAB_DIR)/data or scorer at $(NABSCORE_DIR) (set NAB_DIR, NABSCORE_DIR)"; \
		exit 0; fi; \
	set -e; mkdir -p bin var; rm -rf var/nab; \
	$(GO) build -o bin/netaiops-eval ./cmd/netaiops-eval; \
	bin/netaiops-eval nab --data "$(NAB_DIR)/data" --out var/nab --labels "$(NAB_DIR)/labels/combined_windows.json"; \
	cd "$(NABSCORE_DIR)"; \
	echo "nabscore, NAB-optimised threshold:"; \
	$(GO) run . -labels "$(abspath $(NAB_DIR))/labels/combined_windows.json" -results "$(CURDIR)/var/nab" -d netaiops; \
	echo "nabscore, shipped threshold (var/nab/thresholds.json):"; \
	$(GO) run . -labels "$(abspath $(NAB_DIR))/labels/combined_windows.json" -results "$(CURDIR)/var/nab" -d netaiops \
		-thresholds "$(CURDIR)/var/nab/thresholds.json"

bench-detect:
	@set -o pipefail; $(GO) test -run '^$$' -bench 'Update' -benchtime 3000000x ./agent/detect/anomaly/ | \
	awk 'BEGIN { printf "%-34s %10s %12s %14s %13s %14s\n", "benchmark", "ns/update", "updates/s", "updates/cpu-s", "bytes/series", "allocs/update" } \
	/^Benchmark/ { delete m; for (i = 3; i < NF; i += 2) m[$$(i+1)] = $$i; \
		printf "%-34s %10s %12.0f %14.0f %13s %14s\n", $$1, m["ns/op"], m["updates/s"], m["updates/cpu-s"], m["B/series"], m["allocs/op"] } \
	/^(FAIL|ok|PASS)/ { print }'

# --- flow benchmark (collector/flow) -------------------------------------------
# Writes a seeded 4-million-packet capture (~660 000 flows: IPv4/IPv6,
# TCP/UDP/ICMP, some 802.1Q, Zipf-popular servers, a port scan and a SYN
# flood) with netaiops-pcapgen, runs the in-package Go benchmarks (allocs per
# packet), then times the flow pipeline from memory and end to end from the
# file next to softflowd and nfpcapd on the same file. softflowd and nfdump
# are installed with apt-get when missing and we are root; otherwise their
# rows are skipped with a message.
FLOW_BENCH_DIR ?= $(CURDIR)/var/bench-flow
.PHONY: bench-flow
bench-flow:
	@mkdir -p $(FLOW_BENCH_DIR)
	@for p in softflowd:softflowd nfpcapd:nfdump; do \
		bin=$${p%%:*}; pkg=$${p##*:}; \
		command -v $$bin >/dev/null && continue; \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing $$pkg for the comparison rows"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkg >/dev/null 2>&1 || \
			{ apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkg >/dev/null 2>&1; } || \
			echo "could not install $$pkg: the $$bin row will be skipped"; \
		else echo "$$bin missing and not root: the $$bin row will be skipped"; fi; \
	done
	$(GO) run ./cmd/netaiops-pcapgen -preset bench -o $(FLOW_BENCH_DIR)/bench.pcap
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 4000000x ./collector/flow/
	$(GO) run ./collector/flow/flowbench -pcap $(FLOW_BENCH_DIR)/bench.pcap -runs 5

# --- noise benchmark (agent/detect) ---------------------------------------------
# bench-noise replays scripted network scenarios through the detection engine
# with the shipped rules and prints the issues each raises: an upstream link
# failure with twenty devices behind it and a flapping interface (target: one
# root issue, the rest suppressed), and a week of diurnal traffic with counter
# wraps and a reboot (target: no spurious issue). See agent/detect/noise_test.go.
# bench-flow-noise replays a generated busy enterprise edge (5 000 new
# flows/s: clients, busy proxies, popular servers, HTTPS/DNS/QUIC/NTP, a
# nightly backup, CDN bursts; collector/flow/synth) through a real meter into
# the engine with the shipped flow rules, ten minutes of traffic per mix:
# three benign mixes (the tuning seed and two hold-outs of other seeds and
# shapes) must raise 0 issues, and the attack mixes (TCP and UDP vertical
# scans and sweeps, a spoofed SYN flood, a DNS amplification) exactly one
# issue per attack, naming attacker, victim and port, within one interval.
.PHONY: bench-flow-noise
bench-flow-noise:
	@set -o pipefail; NETAIOPS_FLOW_NOISE_MINUTES=$${NETAIOPS_FLOW_NOISE_MINUTES:-10} $(GO) test -run '^TestFlowNoise' -count=1 -timeout 30m -v ./agent/detect/ | grep -v '^=== RUN'

.PHONY: bench-noise
bench-noise:
	@set -o pipefail; $(GO) test -run '^TestNoise' -count=1 -v ./agent/detect/ | grep -v '^=== RUN'

# --- SNMP collector benchmark (collector/snmp) --------------------------------
# bench-snmp prints a table: the collector against Debian's snmpd next to
# gosnmp's bare BulkWalk and net-snmp's snmpbulkwalk (IF-MIB and the whole
# tree), then fleets of simulated devices (netaiops-snmpsim in its own
# process, 48 interfaces each) polled as the agent does each 60 s interval:
# agent CPU per device-poll and per varbind, CPU %, RSS, missed polls, and the
# ratio to gosnmp's bare BulkWalk on the same devices. See
# collector/snmp/bench_test.go. SNMP_BENCH_FLEET sets the fleet sizes.
SNMP_BENCH_FLEET ?= 100,1000,10000
.PHONY: bench-snmp
bench-snmp:
	@set -o pipefail; SNMP_BENCH_FLEET=$(SNMP_BENCH_FLEET) $(GO) test -count=1 -run '^$$' -bench '^BenchmarkSNMP$$' \
		-benchtime 1x -timeout 30m ./collector/snmp/ | grep -v -E '^(goos|goarch|pkg|cpu|PASS|ok|BenchmarkSNMP)'

# --- controller benchmark (controller/ctlbench) ---------------------------------
# bench-controller starts the real netaiops-controller (SQLite file, gRPC on
# loopback), measures the memory of idle WatchIssues streams, then streams
# events from 1 000 simulated agents (one connection each, a steady rate and a
# reconnect-sized burst, 4 batches in flight) while two watchers read every
# change, and prints ack latency p50/p99/max, the longest silence of any agent
# stream against its heartbeat interval, and the controller's CPU and memory.
# Targets: p99 ack under 5 s, no stream silent longer than its heartbeat
# interval. BENCH_CONTROLLER_FLAGS passes flags (see go run ./controller/ctlbench -h).
BENCH_CONTROLLER_FLAGS ?=
.PHONY: bench-controller
bench-controller:
	@mkdir -p bin
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/ ./cmd/netaiops-controller
	$(GO) run ./controller/ctlbench -controller bin/netaiops-controller $(BENCH_CONTROLLER_FLAGS)
