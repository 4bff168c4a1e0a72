#!/usr/bin/env bash
# Install the system packages the test suite needs on a fresh Debian 12 machine.
#
#   scripts/install-deps.sh            # install what is missing (no-op when all present)
#   scripts/install-deps.sh --check    # only report what is missing; exit 1 if anything is
#
# Idempotent: `apt-get update` + `apt-get install` only run when a package is missing.
# Must run as root (or with sudo available). Installs with --no-install-recommends.
#
# Packages:
#   kcat            Kafka CLI client used by tests (see scripts/kcat wrapper: Debian's kcat
#                   links librdkafka 2.0.2; the wrapper prefers a newer librdkafka if built)
#   prometheus      only for `promtool` (metrics exposition checks). The prometheus *service*
#                   is kept from starting (policy-rc.d during install) and disabled afterwards.
#   chromium        headless screenshots of the dashboard/pages
#   fonts-liberation  so headless chromium renders text
#   pkg-config libssl-dev zlib1g-dev cmake build-essential   building rdkafka-sys (vendored librdkafka)
#   curl jq bc      test and benchmark helpers
#   openssl apache2-utils   the web config test: certificates made at test time, and
#                   bcrypt password hashes from htpasswd
#   default-jre-headless maven   Kafka test broker (scripts/kafka.sh fetches its jars via mvn)
#   mmdebstrap umoci python3   scripts/image.sh: the runtime image's root filesystem from
#                   Debian packages, packed as an OCI image layout; python3 reads the Dockerfile
set -euo pipefail

PKGS=(
  kcat
  prometheus
  prometheus-alertmanager
  chromium
  fonts-liberation
  pkg-config
  libssl-dev
  zlib1g-dev
  cmake
  build-essential
  curl
  jq
  bc
  openssl
  apache2-utils
  mmdebstrap
  umoci
  python3
)
# The Kafka broker needs Java 17+ and Maven, and the transactions test compiles its
# producer with javac; only add them when they are not on PATH.
command -v javac >/dev/null 2>&1 || PKGS+=(openjdk-17-jdk-headless)
command -v mvn  >/dev/null 2>&1 || PKGS+=(maven)

export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

is_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" == "ii"* ]]
}

missing=()
for p in "${PKGS[@]}"; do
  is_installed "$p" || missing+=("$p")
done

if [[ "${1:-}" == "--check" ]]; then
  if ((${#missing[@]})); then echo "missing: ${missing[*]}"; exit 1; fi
  echo "all present"; exit 0
fi

stop_service() {
  # Only the binaries are wanted; make sure the packaged daemon ($1, its
  # process name $2) is not running or starting at boot.
  local unit=$1 process=$2
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
  else
    if [[ -x /etc/init.d/$unit ]]; then
      $SUDO /etc/init.d/"$unit" stop >/dev/null 2>&1 || true
      $SUDO update-rc.d "$unit" disable >/dev/null 2>&1 || true
    fi
  fi
  # Belt and braces: a daemon started by the package under a non-systemd
  # init runs as the package's user; the tests' own children are left alone.
  local pids
  pids=$(pgrep -x -u prometheus "$process" 2>/dev/null || true)
  if [[ -n "$pids" ]]; then
    # shellcheck disable=SC2086
    $SUDO kill $pids 2>/dev/null || true
  fi
}

if ((${#missing[@]})); then
  echo "install-deps: installing: ${missing[*]}"
  # Keep maintainer scripts from starting services (prometheus) during install.
  created_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  cleanup() { if ((created_policy)); then $SUDO rm -f /usr/sbin/policy-rc.d; fi; }
  trap cleanup EXIT
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  cleanup; created_policy=0
  echo "install-deps: done"
else
  echo "install-deps: all packages present"
fi

# Always make sure the packaged daemons are not left running (cheap, idempotent).
if is_installed prometheus; then stop_service prometheus prometheus; fi
if is_installed prometheus-alertmanager; then stop_service prometheus-alertmanager prometheus-alertmanager; fi

# Quick sanity output (non-fatal).
for cmd in kcat promtool prometheus prometheus-alertmanager chromium java javac mvn; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "install-deps: WARNING: $cmd not on PATH" >&2
  fi
done
