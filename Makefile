# skiff — the two commands that matter:
#   make quickstart   install what is missing, build, start the daemon, run the example
#   make test         the whole test suite (unit + end-to-end with real containers)

SHELL      := /bin/bash
GO         ?= go
BIN        := bin/skiff
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS    := -s -w -X skiff.dev/skiff/internal/cli.Version=$(VERSION)
SKIFF_ROOT ?= /var/lib/skiff
SKIFF_SOCKET ?= /run/skiff/skiff.sock
SKIFF_LOG  ?= /var/log/skiff.log

# Debian packages skiff needs at run time, and the extra ones its tests
# and benchmarks use as peers and references.
RUN_PKGS   := runc conmon containernetworking-plugins iptables iproute2 kmod
TEST_PKGS  := $(RUN_PKGS) busybox-static curl procps skopeo umoci docker-registry crun podman podman-compose wrk hyperfine nginx-light git patch mmdebstrap openssh-client openssh-server docker-compose nodejs npm
# The Kubernetes suite (make test-kube) runs a real kube-apiserver over
# Debian's etcd, and a node: a kubelet over Debian's containerd, runc and
# the CNI plugins.
KUBE_PKGS  := etcd-server containerd runc containernetworking-plugins iproute2 util-linux

export CGO_ENABLED := 0

.PHONY: all build examples base-images quickstart test test-unit test-e2e test-kube kube-bins deps deps-test deps-kube bench fuzz clean vet

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/skiff

examples:
	$(GO) build -trimpath -o examples/hello/hello ./examples/hello

# base-images makes Debian bookworm base images with mmdebstrap and
# imports them into the running daemon (IMAGES: some of debian
# debian-golang debian-postgresql; default all); the tars are cached.
IMAGES ?=
base-images: build
	@scripts/base-images.sh $(IMAGES)

# deps installs the Debian packages that are missing (apt-get update once).
deps:
	@scripts/install-deps.sh $(RUN_PKGS)

deps-test:
	@scripts/install-deps.sh $(TEST_PKGS)

deps-kube:
	@scripts/install-deps.sh $(KUBE_PKGS)

quickstart: deps build examples
	@scripts/quickstart.sh

vet:
	$(GO) vet ./... ./testdata/progs/...

test: deps-test vet
	$(GO) test -count=1 -timeout 40m ./... ./testdata/progs/...

test-unit:
	$(GO) test -count=1 -short ./internal/... ./api/...

test-e2e: build
	$(GO) test -count=1 -v ./test/e2e/

# kube-bins builds kube-apiserver, kube-controller-manager and kubelet from
# test/tools/kube once (about ten minutes) and caches them in
# ~/.cache/skiff-test/kube/VERSION (SKIFF_KUBE_CACHE overrides the parent).
kube-bins:
	@scripts/kube-bins.sh >/dev/null

# test-kube runs skiff kube apply and diff against a real API server,
# controller manager and etcd started on loopback, and a node (kubelet and
# containerd) whose pods live on a bridge of their own (test/kube, build tag kube).
test-kube: deps-kube kube-bins
	$(GO) vet -tags kube ./test/kube/
	SKIFF_KUBE_BIN="$$(scripts/kube-bins.sh)" $(GO) test -tags kube -count=1 -timeout 20m -v ./test/kube/

# Each fuzz target for a while longer than the seed-corpus run in make test.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz=FuzzApply -fuzztime=$(FUZZTIME) ./internal/image/unpack/
	$(GO) test -run '^$$' -fuzz=FuzzParseReference -fuzztime=$(FUZZTIME) ./internal/image/
	$(GO) test -run '^$$' -fuzz=FuzzBuildDockerfile -fuzztime=$(FUZZTIME) ./internal/image/build/
	$(GO) test -run '^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./internal/logs/
	$(GO) test -run '^$$' -fuzz=FuzzGuard -fuzztime=$(FUZZTIME) ./internal/apiauth/
	$(GO) test -run '^$$' -fuzz=FuzzParseRules -fuzztime=$(FUZZTIME) ./api/policy/

bench: deps-test build examples
	bench/run.sh

clean:
	rm -rf bin examples/hello/hello
