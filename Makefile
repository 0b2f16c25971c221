# nginx-upgrade-harness — see README.md.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN := bin/nginx-upgrade-harness
# The tool's version and commit, printed by `version` and kept in report.json.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Extra flags for `make run`, e.g. make run ARGS='--scenario upgrade --rate 800'
ARGS ?=
JUNIT ?= $(CURDIR)/reports-out/junit.xml
# Ginkgo's CLI, at the version go.mod pins, and how many processes run the
# specs that may share the machine (the Serial ones run alone, after them).
# 3 on this machine's 2 cores: a spec mostly waits (audits, drains), and 3
# kept the CPU at 70-90 % with every verdict as measured one at a time; 4
# saturated it (docs/testing.md). Chosen when the specs start from the CPU
# idle then (scripts/procs.sh): 2 beside a neighbour that keeps a core busy.
GINKGO := bin/ginkgo
PROCS ?= $(shell sh scripts/procs.sh)

.PHONY: all deps build run test unit fuzz scenarios vm docs costs leftovers bench soak prune clean

all: build

# Host tools the tests need (the tool needs none): debootstrap, QEMU, qemu-img
# and e2fsprogs for the VM spec, chromium for the rendered report, the
# archive keyring the embedded keys are held to; from Debian's packages.
deps:
	@sh scripts/deps.sh

# Static (CGO_ENABLED=0): the same binary runs as each run's reaper, in an
# image holding nothing else (docs/environment.md).
build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/nginx-upgrade-harness

# The default suite against the default builds; writes a report directory
# under reports-out/ and exits 0 only if every scenario met its expectation.
run: build
	./$(BIN) run $(ARGS)

# Every test, the container scenarios included. Container tests fail (never
# skip) when Docker is unreachable.
test: deps unit fuzz scenarios leftovers

# Two packages at a time: the CLI's tests (two minutes of scenarios) beside
# the rest. Image builds that two test binaries both miss take turns (a
# lock per engine in the cache directory). The static CLI is the reaper
# and the heartbeat of the runs the tests start in-process (upgradetest).
unit: build
	$(GO) vet ./...
	NUH_REAPER_BINARY=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 2 -timeout 60m ./harness/... ./loadgen/... ./reports/... ./cmd/... ./scenarios/matrix/ ./examples/ci/ ./upgradetest/

# The record readers, the judge and the renderers under Go's fuzzer for
# FUZZTIME, seeded from a real run's record (reports/testdata/upgrade-run):
# no record may make `report` panic, hang or write no report. One worker:
# the machine is shared with live measurements. A new input is not
# minimized (it would take a minute of the budget, the record is large).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReport$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0 -parallel 1 ./reports/

# Every spec of the suite, under $(PROCS) Ginkgo processes (docs/testing.md:
# what each label costs). Ginkgo's CLI compiles the suite with the go on PATH.
# When a spec fails, each failure's message is printed last
# (scripts/failures.sh), where the tail of a CI log shows it.
# Each process holds a reaper made of the static CLI (NUH_REAPER_BINARY).
# The `vm` spec (the cgroup v2 host, docs/vm.md: about 16 minutes of both
# cores quiet, up to 50 beside a busy core) is Serial: it runs alone, after
# the others; the suite's 80 minutes leave the noisy spec its turn after it.
scenarios: $(GINKGO) build
	@mkdir -p $(dir $(JUNIT))
	NUH_REAPER_BINARY=$(CURDIR)/$(BIN) PATH="$(dir $(GO)):$$PATH" ./$(GINKGO) -p --procs $(PROCS) -v --timeout 80m --junit-report=$(JUNIT) ./scenarios/ \
		|| { sh scripts/failures.sh $(JUNIT); exit 1; }

# The cgroup v2 host: a Debian trixie VM under QEMU (docs/vm.md), alone.
vm: deps $(GINKGO) build
	NUH_REAPER_BINARY=$(CURDIR)/$(BIN) PATH="$(dir $(GO)):$$PATH" ./$(GINKGO) -v --timeout 90m --label-filter=vm ./scenarios/

$(GINKGO): go.mod go.sum
	$(GO) build -o $@ github.com/onsi/ginkgo/v2/ginkgo

# What each Ginkgo label cost in the last make test, from its JUnit.
costs:
	@sh scripts/spec-costs.sh $(JUNIT)

# docs/reference.md from the code: the catalogue, faults, traffic kinds,
# procedures and flags (a unit test fails when it is not up to date).
docs:
	$(GO) run ./cmd/nginx-upgrade-harness run --list --markdown > docs/reference.md.tmp
	mv docs/reference.md.tmp docs/reference.md

# No container may be left behind by a test, passed or failed: in Docker,
# and in Podman's storage (the `podman` spec's engine) where podman is.
leftovers:
	@n=$$(docker ps -aq --filter label=nginx-upgrade-harness=1 | wc -l); \
	if [ "$$n" -ne 0 ]; then echo "leftovers: $$n container(s) labelled nginx-upgrade-harness=1 remain"; docker ps -a --filter label=nginx-upgrade-harness=1; exit 1; fi; \
	if command -v podman >/dev/null; then \
		n=$$(podman ps -aq --filter label=nginx-upgrade-harness=1 | wc -l); \
		if [ "$$n" -ne 0 ]; then echo "leftovers: $$n Podman container(s) labelled nginx-upgrade-harness=1 remain"; podman ps -a --filter label=nginx-upgrade-harness=1; exit 1; fi; \
		echo "leftovers: none (Docker and Podman)"; \
	else echo "leftovers: none (Docker; no podman here)"; fi

# Throughput, memory and render-time figures (benchmarks, not timed tests).
bench: deps build
	sh scripts/bench.sh

# The default suite SOAK_N times back to back in one process; after each run,
# its containers, goroutines, open fds and resident memory (nothing may grow).
SOAK_N ?= 20
soak: deps
	$(GO) build -o bin/harness-soak ./cmd/harness-soak
	./bin/harness-soak -n $(SOAK_N)

prune: build
	./$(BIN) prune

clean:
	rm -rf bin
