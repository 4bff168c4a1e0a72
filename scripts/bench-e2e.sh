#!/usr/bin/env bash
# End-to-end benchmark of the daemon against the project's real Kafka broker.
#
# For each stream (`tracker`: Zipf-popular pages, posts re-observed 10-50
# times; `inserts`: every event a new post; both ~200-byte events over
# 100,000 pages), loads N events into a fresh 3-partition topic with
# `engagement-monitor produce`, then measures in the same run:
#   (a) kcat reading the whole topic to /dev/null, and
#   (b) the daemon catching up from offset 0 (start -> /readyz 200 with
#       ready_max_lag = 0, i.e. every event applied),
# and prints both rates and their ratio. kcat is timed as the best of three
# passes. With DIRECTORY=1, the stream's page directory (produce
# --directory) goes to a compacted topic too, and (c) the daemon catches up
# once more with it loaded (--directory-topic, one configured group): the
# ratio of (c) to (b) is the directory's cost on the ingest path.
#
# With SHARDS set (e.g. SHARDS="1 2"), it measures shard mode instead: for
# each count n, n shards of one fresh group (fresh state and page-totals
# topics) catch up on a 6-partition topic from offset 0, and the aggregate
# rate is N / (the group's first assignment -> every shard ready). A
# replica catches up on the same topic first, timed the same way (its
# assignment -> ready), and each count's rate is also given as a ratio of
# the replica's. On a 2-core machine that shares its cores with the broker
# the point is that the work splits, not speed.
#
# Usage: scripts/bench-e2e.sh [N] [STREAM...]   (default N = 2000000, both streams)
#        SHARDS="1 2" scripts/bench-e2e.sh [N] [STREAM...]
#        DIRECTORY=1 scripts/bench-e2e.sh [N] [STREAM...]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
N="${1:-2000000}"
shift || true
STREAMS=("${@:-tracker inserts}")
read -r -a STREAMS <<<"${STREAMS[*]}"
PORT="${BENCH_PORT:-19898}"

scripts/kafka.sh start >/dev/null
eval "$(scripts/kafka.sh env)"
cargo build --release --quiet
BIN="$REPO/target/release/engagement-monitor"

now() { date +%s.%N; }
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

# daemon_pass TOPIC [ARGS...]: the daemon (with ARGS) catching up on TOPIC
# from offset 0; sets daemon_s, applied, cpu and rss.
daemon_pass() {
  local topic="$1" t0 t1 pid fifo
  shift
  # The moment of readiness is read from the daemon's own log line ("caught
  # up", emitted as /readyz turns 200) through a FIFO: polling /readyz
  # with curl would spend the CPU the daemon is measured on.
  fifo=$(mktemp -u)
  mkfifo "$fifo"
  t0=$(now)
  ENGAGEMENT_MONITOR_RANKING_READY_MAX_LAG=0 ENGAGEMENT_MONITOR_RANKING_INTERVAL=10s \
    RUST_LOG=warn,engagement_monitor::telemetry=info ENGAGEMENT_MONITOR_ENGINE_MAX_POSTS=100000000 \
    "$BIN" run --brokers "$KAFKA_BROKERS" --topic "$topic" --group "$topic-bench" --listen "127.0.0.1:$PORT" \
    "$@" 2>"$fifo" &
  pid=$!
  trap 'kill $pid 2>/dev/null || true; rm -f "$fifo"' EXIT
  exec 3<"$fifo"
  while IFS= read -r line <&3; do [[ "$line" == *"caught up"* ]] && break; done
  t1=$(now)
  cat <&3 >/dev/null &
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "bench-e2e: /readyz is not 200 after the ready log line" >&2; exit 1; }
  daemon_s=$(echo "$t1 - $t0" | bc -l)
  applied=$(metric 'engagement_events_total{outcome="applied"}')
  cpu=$(awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$pid/stat")
  rss=$(metric process_resident_memory_bytes)
  kill -TERM "$pid"; wait "$pid" || true
  exec 3<&-
  rm -f "$fifo"
  trap - EXIT
}

# bench STREAM: prints one result block.
bench() {
  local stream="$1" topic t0 t1 kcat_s pass_s daemon_s applied cpu rss plain_rate
  topic="bench-e2e-$stream-$(date +%s)"
  echo "== $stream: loading $N events into $topic (3 partitions, lz4)..."
  local directory=()
  [[ -n "${DIRECTORY:-}" ]] && directory=(--directory "$topic-directory")
  "$BIN" produce --brokers "$KAFKA_BROKERS" --topic "$topic" --partitions 3 \
    --scenario "$stream" --pages 100000 --events "$N" --compression lz4 --no-progress "${directory[@]}"

  # kcat: the best of three passes (the first is often slower).
  echo "kcat: reading the topic to /dev/null, three times..."
  kcat_s=""
  for _ in 1 2 3; do
    t0=$(now)
    kcat -b "$KAFKA_BROKERS" -C -t "$topic" -o beginning -e -q > /dev/null
    t1=$(now)
    pass_s=$(echo "$t1 - $t0" | bc -l)
    if [[ -z "$kcat_s" ]] || (( $(echo "$pass_s < $kcat_s" | bc -l) )); then kcat_s=$pass_s; fi
  done

  echo "daemon: catching up from offset 0..."
  daemon_pass "$topic"
  local kcat_rate daemon_rate
  kcat_rate=$(echo "$N / $kcat_s" | bc -l)
  daemon_rate=$(echo "$N / $daemon_s" | bc -l)
  plain_rate=$daemon_rate
  printf '\n%s: events %d (applied by the daemon: %s)\n' "$stream" "$N" "$applied"
  printf '  kcat   : %6.2f s  %10.0f events/s  (best of 3)\n' "$kcat_s" "$kcat_rate"
  printf '  daemon : %6.2f s  %10.0f events/s  (cpu %.2f s, rss %.0f MiB)\n' \
    "$daemon_s" "$daemon_rate" "$cpu" "$(echo "$rss / 1048576" | bc -l)"
  printf '  ratio daemon/kcat: %.2f\n' "$(echo "$daemon_rate / $kcat_rate" | bc -l)"
  if [[ -n "${DIRECTORY:-}" ]]; then
    # The same catch-up with the page directory loaded (100,000 records,
    # four categories) and one of them a configured group.
    ENGAGEMENT_MONITOR_RANKING_GROUPS=category:government daemon_pass "$topic" --directory-topic "$topic-directory"
    daemon_rate=$(echo "$N / $daemon_s" | bc -l)
    printf '  daemon with the directory: %6.2f s  %10.0f events/s  (cpu %.2f s, rss %.0f MiB)\n' \
      "$daemon_s" "$daemon_rate" "$cpu" "$(echo "$rss / 1048576" | bc -l)"
    printf '  ratio with/without the directory: %.3f\n' "$(echo "$daemon_rate / $plain_rate" | bc -l)"
  fi
  echo
}

# shards STREAM: loads the stream once, then times each shard count.
shards() {
  local stream="$1" topic n i t0 t1 secs run applied
  topic="bench-shards-$stream-$(date +%s)"
  echo "== $stream (shard mode): loading $N events into $topic (6 partitions, lz4)..."
  "$BIN" produce --brokers "$KAFKA_BROKERS" --topic "$topic" --partitions 6 \
    --scenario "$stream" --pages 100000 --events "$N" --compression lz4 --no-progress
  # The replica, on the same topic, timed from its assignment to readiness.
  local replica_log replica_pid replica_s
  replica_log=$(mktemp)
  ENGAGEMENT_MONITOR_RANKING_READY_MAX_LAG=0 ENGAGEMENT_MONITOR_RANKING_INTERVAL=2s \
    ENGAGEMENT_MONITOR_ENGINE_MAX_POSTS=100000000 RUST_LOG=warn,engagement_monitor::telemetry=info NO_COLOR=1 \
    "$BIN" run --brokers "$KAFKA_BROKERS" --topic "$topic" --group "$topic-replica" --listen "127.0.0.1:$PORT" \
    2>"$replica_log" &
  replica_pid=$!
  trap 'kill $replica_pid 2>/dev/null || true; rm -f "$replica_log"' EXIT
  until grep -q "caught up" "$replica_log"; do sleep 0.2; done
  t0=$(grep -h "assigned partitions" "$replica_log" | awk '{print $1}' | head -1)
  t1=$(grep -h "caught up" "$replica_log" | awk '{print $1}' | head -1)
  replica_s=$(echo "$(date -d "$t1" +%s.%N) - $(date -d "$t0" +%s.%N)" | bc -l)
  kill -TERM "$replica_pid"; wait "$replica_pid" || true
  rm -f "$replica_log"
  trap - EXIT
  printf '%s, replica: %6.2f s from assignment to ready, %10.0f events/s\n' \
    "$stream" "$replica_s" "$(echo "$N / $replica_s" | bc -l)"
  for n in $SHARDS; do
    run="$topic-$n"
    local pids=() logs=()
    for ((i = 0; i < n; i++)); do
      logs+=("$(mktemp)")
      ENGAGEMENT_MONITOR_RANKING_READY_MAX_LAG=0 ENGAGEMENT_MONITOR_RANKING_INTERVAL=2s \
        ENGAGEMENT_MONITOR_STATE_CHECKPOINT_INTERVAL=10m ENGAGEMENT_MONITOR_ENGINE_MAX_POSTS=100000000 \
        ENGAGEMENT_MONITOR_CLUSTER_STATE_TOPIC="$run-state" ENGAGEMENT_MONITOR_CLUSTER_TOTALS_TOPIC="$run-totals" \
        RUST_LOG=warn,engagement_monitor::telemetry=info NO_COLOR=1 \
        "$BIN" run --brokers "$KAFKA_BROKERS" --topic "$topic" --group "$run" --listen "127.0.0.1:$((PORT + i))" \
        --mode shard --instance-id "bench-$i" 2>"${logs[$i]}" &
      pids+=($!)
    done
    trap 'kill "${pids[@]}" 2>/dev/null || true; rm -f "${logs[@]}"' EXIT
    # Every shard ready: its log says "caught up" (polled slowly, to
    # leave the CPU to the shards).
    until [[ $(grep -l "caught up" "${logs[@]}" | wc -l) -eq $n ]]; do sleep 0.2; done
    # Timed from the group's first assignment (after the broker's initial
    # rebalance delay) to the last shard's readiness, by the logs' clocks.
    t0=$(grep -h "partitions assigned" "${logs[@]}" | awk '{print $1}' | sort | head -1)
    t1=$(grep -h "caught up" "${logs[@]}" | awk '{print $1}' | sort | tail -1)
    secs=$(echo "$(date -d "$t1" +%s.%N) - $(date -d "$t0" +%s.%N)" | bc -l)
    applied=0
    local each=""
    for ((i = 0; i < n; i++)); do
      local a cpu
      a=$(curl -s "http://127.0.0.1:$((PORT + i))/metrics" \
        | awk '$1 == "engagement_events_total{outcome=\"applied\"}" {print $2}')
      cpu=$(awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/${pids[$i]}/stat")
      applied=$((applied + a))
      each+=$(printf ' [shard %d: %d applied, cpu %.2f s]' "$i" "$a" "$cpu")
    done
    kill -TERM "${pids[@]}"; wait "${pids[@]}" || true
    rm -f "${logs[@]}"
    trap - EXIT
    printf '%s, %d shard(s): %6.2f s from assignment to all ready, %10.0f events/s aggregate, %.2f x the replica (applied: %d)%s\n' \
      "$stream" "$n" "$secs" "$(echo "$N / $secs" | bc -l)" "$(echo "$replica_s / $secs" | bc -l)" "$applied" "$each"
  done
}

for s in "${STREAMS[@]}"; do
  if [[ -n "${SHARDS:-}" ]]; then shards "$s"; else bench "$s"; fi
done
