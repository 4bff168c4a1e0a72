#!/usr/bin/env bash
# The one command that runs every test of engagement-monitor on a fresh
# Debian machine: installs what the tests need, checks formatting and lints,
# starts the project's Apache Kafka broker, runs unit, property and
# integration tests against it, smoke-runs the benches and checks the
# Prometheus rules with promtool. Exits non-zero on the first failure.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

step() { printf '\n==> %s\n' "$*"; }

step "installing test dependencies"
scripts/install-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets -- -D warnings

step "starting the Kafka broker"
scripts/kafka.sh start
trap 'scripts/kafka.sh stop || true' EXIT
eval "$(scripts/kafka.sh env)"
export KAFKA_BROKERS

step "cargo test (unit, property and integration tests)"
cargo test --all-targets --no-fail-fast

step "broker restart test (alone: it stops and restarts the broker)"
cargo test --test it -- --ignored broker_restart::

step "benches compile and run once (criterion --test mode)"
BENCH_QUICK=1 cargo bench --bench engine -- --test

if [ -f deploy/prometheus/rules.test.yml ]; then
  step "promtool test rules"
  promtool check rules deploy/prometheus/rules.yml
  promtool test rules deploy/prometheus/rules.test.yml
fi

step "all tests passed"
