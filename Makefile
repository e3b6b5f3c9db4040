# evenkeel: see README.md. Every target works on a fresh Debian 12 machine.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# The whole suite must stay under 15 minutes on 2 cores.
TEST_TIMEOUT ?= 14m

.PHONY: all demo sandbox test deps test-go test-rules bench lint build clean

all: build

build:
	$(GO) build ./...

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
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./schemasync/...
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./canary/...
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./dbstate/...

## lint: gofmt, go vet and staticcheck must all be clean.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean:
	$(GO) clean -testcache
