#!/usr/bin/env bash
# End-to-end benchmark of the daemon against the project's real Kafka broker.
#
# Loads N synthetic events (~200 bytes, 100,000 pages) into a fresh
# 3-partition topic with `engagement-monitor produce`, then measures in the
# same run:
#   (a) kcat reading the whole topic to /dev/null, and
#   (b) the daemon catching up from offset 0 (start → /readyz 200 with
#       ready_max_lag = 0, i.e. every event applied),
# and prints both rates and their ratio.
#
# Usage: scripts/bench-e2e.sh [N]   (default N = 2000000)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
N="${1:-2000000}"
PORT="${BENCH_PORT:-19898}"

scripts/kafka.sh start >/dev/null
eval "$(scripts/kafka.sh env)"
cargo build --release --quiet
BIN="$REPO/target/release/engagement-monitor"
TOPIC="bench-e2e-$(date +%s)"

echo "loading $N events into $TOPIC (3 partitions, lz4)..."
"$BIN" produce --brokers "$KAFKA_BROKERS" --topic "$TOPIC" --partitions 3 \
  --scenario random --pages 100000 --posts-per-page 50 --events "$N" --compression lz4 --no-progress

now() { date +%s.%N; }

echo "kcat: reading the topic to /dev/null..."
t0=$(now)
kcat -b "$KAFKA_BROKERS" -C -t "$TOPIC" -o beginning -e -q > /dev/null
t1=$(now)
kcat_s=$(echo "$t1 - $t0" | bc -l)

echo "daemon: catching up from offset 0..."
t0=$(now)
ENGAGEMENT_MONITOR_RANKING_READY_MAX_LAG=0 ENGAGEMENT_MONITOR_RANKING_INTERVAL=10s RUST_LOG=warn \
  "$BIN" run --brokers "$KAFKA_BROKERS" --topic "$TOPIC" --group "$TOPIC-bench" --listen "127.0.0.1:$PORT" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.05; done
t1=$(now)
daemon_s=$(echo "$t1 - $t0" | bc -l)
applied=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk -F' ' '/^engagement_events_total\{outcome="applied"\}/ {print $2}')
cpu=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk -F' ' '/^process_cpu_seconds_total/ {print $2}')
rss=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk -F' ' '/^process_resident_memory_bytes/ {print $2}')
kill -TERM $PID; wait $PID || true

kcat_rate=$(echo "$N / $kcat_s" | bc -l)
daemon_rate=$(echo "$N / $daemon_s" | bc -l)
printf '\nevents: %d (applied by the daemon: %s)\n' "$N" "$applied"
printf 'kcat   : %6.2f s  %10.0f events/s\n' "$kcat_s" "$kcat_rate"
printf 'daemon : %6.2f s  %10.0f events/s  (cpu %.2f s, rss %.0f MiB)\n' "$daemon_s" "$daemon_rate" "$cpu" "$(echo "$rss / 1048576" | bc -l)"
printf 'ratio daemon/kcat: %.2f\n' "$(echo "$daemon_rate / $kcat_rate" | bc -l)"
