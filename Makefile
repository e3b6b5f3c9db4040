# evenkeel: see README.md. Every target works on a fresh Debian 12 machine.
GO          ?= go
# The version every binary reports (version subcommand, *_build_info): the nearest tag, commits since, and
# whether the tree was dirty; "devel" outside a git checkout.
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS     := -X github.com/evenkeel/evenkeel/internal/buildinfo.version=$(VERSION)
# The whole suite must stay under 15 minutes on 2 cores.
TEST_TIMEOUT ?= 14m
# Switchovers per cell of dbstate's split matrix benchmark (BenchmarkSplitMatrix); 30 take about half an hour
# (estimated from shorter runs: 1.5 s per switchover, 38 cells).
SPLIT_RUNS  ?= 30

.PHONY: all demo sandbox test deps test-go test-rules bench lint build clean

all: build

## build: every package, and the binaries into bin/, stamped with VERSION.
build:
	$(GO) build ./...
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

## demo: the schema rollout story on loopback, with nothing to install.
demo:
	$(GO) run ./examples/demo

## sandbox: a MariaDB primary on 127.0.0.1:3306 and replicas on 3307-3309 to try dbstate in, until Ctrl-C.
sandbox: deps
	$(GO) run ./examples/sandbox

## deps: install the Debian packages the integration tests use (as root, when missing).
deps:
	bash .ci/install-deps

## test: install what the tests need, then run every test with -race and the Prometheus rule tests.
test: deps test-go test-rules

test-go:
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...

test-rules:
	@command -v promtool >/dev/null || { echo "promtool not found: install the Debian package 'prometheus' (make deps)"; exit 1; }
	promtool check rules examples/prometheus/*.rules.yml
	promtool test rules examples/prometheus/*.test.yml

## bench: every benchmark, printed as tables. The numbers in README.md come from here.
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -timeout 45m ./schemasync/...
	@# The API against nginx again, with the servers on CPU 0 and wrk on CPU 1 (on a machine of 2 or more CPUs).
	if [ $$(nproc) -ge 2 ]; then EVENKEEL_BENCH_WRK_CPUS=1 taskset -c 0 $(GO) test -run '^$$' -bench APIvsNginx -benchtime 1x -timeout 10m ./schemasync/; fi
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./canary/...
	EVENKEEL_SPLIT_RUNS=$(SPLIT_RUNS) $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 90m ./dbstate/...

## lint: gofmt, go vet and staticcheck must all be clean. staticcheck is a tool of go.mod (go tool): nothing is
## downloaded at run time after go mod download.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

clean:
	$(GO) clean -testcache
