#!/usr/bin/env bash
# The one command that runs every test of engagement-monitor on a fresh
# Debian machine: installs what the tests need, checks formatting and lints,
# starts the project's Apache Kafka broker, runs unit, property and
# integration tests against it, smoke-runs the benches, checks the
# Prometheus rules with promtool and the Helm chart and Kubernetes kits
# with scripts/kube-check.sh, and builds and runs the container image
# with scripts/image.sh. Exits non-zero on the first failure.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

step() { printf '\n==> %s\n' "$*"; }

step "installing test dependencies"
scripts/install-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "the core crate depends on nothing of Kafka, HTTP or Prometheus"
if cargo tree -p engagement-core -e normal --prefix none | grep -E '^(rdkafka|tokio|axum|hyper|prometheus) '; then
  echo "engagement-core must stay pure: the crates above crept into its dependency tree" >&2
  exit 1
fi

step "starting the Kafka broker"
scripts/kafka.sh start
trap 'scripts/kafka.sh stop || true' EXIT
eval "$(scripts/kafka.sh env)"
export KAFKA_BROKERS

# --all-targets also runs every bench once at smoke size (criterion's test mode).
step "cargo test (unit, property and integration tests, bench smoke runs)"
cargo test --workspace --all-targets --no-fail-fast

step "broker restart test (alone: it stops and restarts the broker)"
cargo test --test it -- --ignored broker_restart::

# No container engine here: build the runtime image of deploy/Dockerfile
# from the Debian packages distroless is made of, pack it with umoci,
# compare its config with the Dockerfile and run it under chroot as its
# user against the broker (--version, check-config, produce, run to
# /readyz, SIGTERM, status 0).
step "the container image, built without an engine and run (scripts/image.sh)"
scripts/image.sh

step "fuzzing the event decoder for 60 s (cargo-fuzz, nightly)"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
(cd fuzz && cargo +nightly fuzz run decode -- -max_total_time=60 -rss_limit_mb=2048)
step "fuzzing page directory records for 30 s"
(cd fuzz && cargo +nightly fuzz run directory -- -max_total_time=30 -rss_limit_mb=2048)

if [ -f deploy/prometheus/rules.test.yml ]; then
  step "promtool test rules"
  promtool check rules deploy/prometheus/rules.yml
  promtool test rules deploy/prometheus/rules.test.yml
fi

# Lints the Helm chart, strictly validates it and the kustomize kits
# against the Kubernetes and Prometheus Operator types, and checks that the
# chart renders the kits' objects in both modes (Go, Helm from the Go
# module proxy; offline after the first run).
step "Helm chart and Kubernetes kits (scripts/kube-check.sh)"
scripts/kube-check.sh

step "all tests passed"
