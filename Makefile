SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

CARGO ?= cargo
# Flags for scripts/setup.sh. The default installs Chromium and the dashboard's npm packages
# (--web, for web-build and web-e2e) and starts libvirtd (the qemu:///system test).
SETUP_FLAGS ?= --web --libvirtd
# Cluster tests spawn real daemons: keep parallelism low (2-core machines).
CLUSTER_TEST_THREADS ?= 2

.PHONY: help setup build fmt-check clippy unit cluster-test web-build web-e2e test demo bench clean-demo

help:
	@echo "targets: setup build fmt-check clippy unit cluster-test web-build web-e2e test demo bench clean-demo"

setup:
	bash scripts/setup.sh $(SETUP_FLAGS)

build:
	$(CARGO) build --workspace --bins

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) nextest run -p quantix --no-fail-fast

cluster-test:
	$(CARGO) build --workspace --bins
	$(CARGO) nextest run -p cluster-tests --no-fail-fast --test-threads $(CLUSTER_TEST_THREADS)

# The dashboard: TypeScript client generated from proto/ (protoc + protoc-gen-es), type
# check, Vite build into web/dist, which build.rs embeds into quantixd. Needs `npm ci` first
# (scripts/setup.sh --web).
web-build:
	cd web && npm run build

# Browser tests: Debian's headless Chromium (Playwright) against a real 3-host cluster of the
# debug binaries, which must embed the fresh web/dist, hence the build after web-build.
# Screenshots go to docs/screenshots/.
web-e2e: web-build
	$(CARGO) build --workspace --bins
	cd web && npx playwright test

# Stages run one after another (also under -j) and stop at the first failure.
test:
	@echo "== setup";        $(MAKE) --no-print-directory setup
	@echo "== fmt-check";    $(MAKE) --no-print-directory fmt-check
	@echo "== clippy";       $(MAKE) --no-print-directory clippy
	@echo "== unit";         $(MAKE) --no-print-directory unit
	@echo "== cluster-test"; $(MAKE) --no-print-directory cluster-test
	@echo "== web-e2e";      $(MAKE) --no-print-directory web-e2e
	@echo "== all test stages passed"

demo: setup
	$(MAKE) --no-print-directory web-build
	$(CARGO) build --release --bins
	bash scripts/demo.sh

bench:
	$(CARGO) build --release --bins
	@if [[ -f scripts/bench.sh ]]; then bash scripts/bench.sh; \
	else echo "bench: scripts/bench.sh does not exist yet; nothing to run"; fi

# Stops the demo daemons (pids from $QUANTIX_DEMO_DIR/host*/pid) and removes the demo dir.
clean-demo:
	bash scripts/demo.sh --clean
