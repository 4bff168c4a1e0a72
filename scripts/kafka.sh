#!/usr/bin/env bash
# Single-node Apache Kafka 4.x test broker (KRaft, broker+controller in one JVM),
# built from Maven Central jars -- no tarball download, no Docker.
#
# Usage: scripts/kafka.sh COMMAND [ARGS]
#   fetch                      download broker jars into $KAFKA_HOME_DIR/lib (skipped when cached)
#   start                      fetch if needed, format storage once, start, wait until it answers
#   stop                       SIGTERM, wait up to $KAFKA_STOP_TIMEOUT s, then SIGKILL
#   restart                    stop + start (data is kept)
#   status                     exit 0 iff the broker is running and answering requests
#   env                        print KAFKA_BROKERS=127.0.0.1:<port> (eval-able)
#   wipe                       stop and delete data + logs (keeps the downloaded jars)
#   topic-create NAME [PARTITIONS] [REPLICATION]   create topic if missing (default 1 partition)
#   topic-delete NAME          delete topic
#   topic-list                 list topics
#   topic-describe [NAME]      describe topic(s)
#   logs [N]                   print the last N (default 100) lines of the broker log
#
# Environment (all optional):
#   KAFKA_VERSION          Kafka version from Maven Central       (default 4.1.1)
#   KAFKA_HOME_DIR         runtime dir: lib/ data/ logs/ config   (default <repo>/.kafka)
#   KAFKA_PORT             PLAINTEXT listener on 127.0.0.1         (default 19092)
#   KAFKA_CONTROLLER_PORT  KRaft controller listener on 127.0.0.1  (default 19093)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to answer (default 90)
#   KAFKA_STOP_TIMEOUT     seconds to wait after SIGTERM            (default 30)
#   KAFKA_HEAP_OPTS        JVM heap                                 (default -Xms256m -Xmx1g)
#   KAFKA_JVM_OPTS         extra JVM options for the broker
#   KAFKA_AUTO_CREATE_TOPICS  auto.create.topics.enable             (default false)
#   KAFKA_EXTRA_CONFIG     extra server.properties lines (newline-separated), appended last
#   KAFKA_MVN_ARGS         extra arguments for the mvn fetch (e.g. -o for offline)
#   KAFKA_CDS              1 (default) = use/create an AppCDS archive to start faster; 0 = off
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"

KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
HOME_DIR="${KAFKA_HOME_DIR:-$REPO_DIR/.kafka}"
PORT="${KAFKA_PORT:-19092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
HOST=127.0.0.1
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
AUTO_CREATE="${KAFKA_AUTO_CREATE_TOPICS:-false}"

LIB_DIR="$HOME_DIR/lib"
DATA_DIR="$HOME_DIR/data"
LOG_DIR="$HOME_DIR/logs"
CONF_DIR="$HOME_DIR/config"
PID_FILE="$HOME_DIR/kafka.pid"
STAMP_FILE="$LIB_DIR/.kafka-version"
POM="$SCRIPT_DIR/kafka/pom.xml"

log() { echo "kafka.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- jars

# The stamp records the Kafka version and a hash of the pom, so editing either refetches.
stamp_value() { echo "$KAFKA_VERSION $(sha1sum "$POM" | cut -c1-12)"; }

have_jars() {
  [[ -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$(stamp_value)" ]]
}

require_java() {
  command -v java >/dev/null 2>&1 || die "java not found (Kafka 4.x needs Java 17+; run scripts/install-deps.sh)"
  local v
  v=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  [[ "${v%%.*}" -ge 17 ]] 2>/dev/null || die "Java 17+ required, found '${v:-unknown}'"
}

cmd_fetch() {
  if have_jars; then return 0; fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (run scripts/install-deps.sh)"
  mkdir -p "$HOME_DIR"
  local tmp t0
  tmp="$(mktemp -d "$HOME_DIR/lib.tmp.XXXXXX")"
  t0=$SECONDS
  log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central ..."
  # shellcheck disable=SC2086
  if ! mvn -B -q -Dstyle.color=never -f "$POM" ${KAFKA_MVN_ARGS:-} \
        -Dkafka.version="$KAFKA_VERSION" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
        >"$HOME_DIR/fetch.log" 2>&1; then
    tail -n 40 "$HOME_DIR/fetch.log" >&2
    rm -rf "$tmp"
    die "mvn fetch failed (full output: $HOME_DIR/fetch.log)"
  fi
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after fetch"; }
  stamp_value >"$tmp/.kafka-version"
  rm -rf "$LIB_DIR"
  mv "$tmp" "$LIB_DIR"
  log "fetched $(find "$LIB_DIR" -name '*.jar' | wc -l) jars in $((SECONDS - t0))s -> $LIB_DIR"
}

# Run a Kafka command-line tool class with the quiet tools log config.
run_tool() {
  local cls="$1"; shift
  java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/tools-log4j2.properties" \
    -cp "$LIB_DIR/*" "$cls" "$@"
}

# ---------------------------------------------------------------- process state

read_pid() { if [[ -f "$PID_FILE" ]]; then cat "$PID_FILE" 2>/dev/null || true; fi; }

# True if the pid file names a live process that is our broker.
is_running() {
  local pid
  pid="$(read_pid)"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $CONF_DIR/server.properties"
}

# Protocol-level liveness check without a JVM: send a Kafka ApiVersions v0 request
# over /dev/tcp and require a response with our correlation id and error_code 0.
# The broker only enables request processing once it has caught up with the
# metadata log and been unfenced by the controller, so an answer here means ready.
ping_broker() {
  local hex
  hex=$(
    exec 2>/dev/null
    exec 3<>"/dev/tcp/$HOST/$PORT" || exit 1
    # size=14 | api_key=18 (ApiVersions) | api_version=0 | correlation_id=0x4b41 | client_id="ping"
    printf '\x00\x00\x00\x0e\x00\x12\x00\x00\x00\x00\x4b\x41\x00\x04ping' >&3
    timeout 3 head -c 10 <&3 | od -An -tx1 | tr -d ' \n'
    exec 3>&-
  ) || return 1
  # bytes: size(4) correlation_id(4) error_code(2)
  [[ "${hex:8:12}" == "00004b410000" ]]
}

port_in_use() {
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# ---------------------------------------------------------------- config

write_config() {
  mkdir -p "$CONF_DIR" "$DATA_DIR" "$LOG_DIR"
  cat >"$CONF_DIR/server.properties" <<EOF
# Generated by scripts/kafka.sh on every start -- edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$DATA_DIR

# Single node: every internal topic has RF 1.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Fewer internal partitions than the defaults (50) => faster first group join on 2 cores.
offsets.topic.num.partitions=4
transaction.state.log.num.partitions=4
share.coordinator.state.topic.num.partitions=4

# Group behaviour: Kafka's default initial delay (3 s), so that shards
# started together join one generation and split the partitions at once,
# as in production; only shard mode joins groups (replica mode assigns).
group.initial.rebalance.delay.ms=3000
group.min.session.timeout.ms=1000

auto.create.topics.enable=$AUTO_CREATE
delete.topic.enable=true

# Small box (2 cores).
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
EOF
  if [[ -n "${KAFKA_EXTRA_CONFIG:-}" ]]; then
    printf '\n# KAFKA_EXTRA_CONFIG\n%s\n' "$KAFKA_EXTRA_CONFIG" >>"$CONF_DIR/server.properties"
  fi
}

# KRaft storage must be formatted once with a cluster id before the first start.
format_storage() {
  [[ -f "$DATA_DIR/meta.properties" ]] && return 0
  local cluster_id
  # A Kafka Uuid is 16 random bytes, base64url without padding (22 chars).
  cluster_id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  log "formatting KRaft storage (cluster id $cluster_id)"
  # `--cluster-id=ID`, not `-t ID`: an id starting with '-' (1 in 32) would
  # be read as an option.
  run_tool kafka.tools.StorageTool format --cluster-id="$cluster_id" -c "$CONF_DIR/server.properties" \
    >"$LOG_DIR/format.log" 2>&1 || { cat "$LOG_DIR/format.log" >&2; die "storage format failed"; }
}

# ---------------------------------------------------------------- commands

wait_ready() {
  local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "broker process $pid exited during startup; last log lines:"
      tail -n 40 "$LOG_DIR/server.log" "$LOG_DIR/kafka.out" >&2 2>/dev/null || true
      rm -f "$PID_FILE"
      return 1
    fi
    if ping_broker; then return 0; fi
    sleep 0.25
  done
  log "broker did not answer on $HOST:$PORT within ${START_TIMEOUT}s; last log lines:"
  tail -n 40 "$LOG_DIR/server.log" "$LOG_DIR/kafka.out" >&2 2>/dev/null || true
  return 1
}

cmd_start() {
  if is_running; then
    # Already started (possibly still starting up from another invocation): wait for it.
    wait_ready "$(read_pid)" || die "running broker (pid $(read_pid)) is not answering"
    log "already running (pid $(read_pid)) on $HOST:$PORT"
    return 0
  fi
  rm -f "$PID_FILE"
  port_in_use "$PORT" && die "port $HOST:$PORT already in use by another process"
  port_in_use "$CONTROLLER_PORT" && die "port $HOST:$CONTROLLER_PORT already in use by another process"
  require_java
  cmd_fetch
  write_config
  format_storage

  # AppCDS: the first run dumps the loaded classes to an archive at JVM exit (i.e. on
  # `stop`); later starts map it, which cuts ~1-3 s of JVM/class-loading time on 2 cores.
  # The archive lives in lib/ so a refetch invalidates it; a stale archive is ignored by
  # the JVM (-Xshare:auto). Disable with KAFKA_CDS=0.
  local cds_opts="" jsa="$LIB_DIR/kafka-broker.jsa"
  if [[ "${KAFKA_CDS:-1}" != 0 ]]; then
    if [[ -s "$jsa" ]]; then cds_opts="-XX:SharedArchiveFile=$jsa"
    else cds_opts="-XX:ArchiveClassesAtExit=$jsa"; fi
  fi

  local t0=$SECONDS
  # setsid: own session/process group, so it survives the caller's terminal/job control.
  # The inner shell records its own pid and execs java, so the pid file names the JVM.
  # shellcheck disable=SC2086,SC2016
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
    java $HEAP_OPTS -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true $cds_opts \
      -Dkafka.logs.dir="$LOG_DIR" \
      -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/log4j2.properties" \
      ${KAFKA_JVM_OPTS:-} \
      -cp "$LIB_DIR/*" kafka.Kafka "$CONF_DIR/server.properties" \
      </dev/null >"$LOG_DIR/kafka.out" 2>&1 9>&- &
  for _ in $(seq 1 50); do [[ -s "$PID_FILE" ]] && break; sleep 0.1; done
  [[ -s "$PID_FILE" ]] || die "broker did not start (no pid file)"
  local pid
  pid="$(read_pid)"
  if ! wait_ready "$pid"; then
    cmd_stop >/dev/null 2>&1 || true
    die "broker failed to start (logs: $LOG_DIR)"
  fi
  log "started (pid $pid) on $HOST:$PORT in $((SECONDS - t0))s"
}

cmd_stop() {
  local pid
  pid="$(read_pid)"
  if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  if ! is_running; then
    log "pid file names pid $pid which is not our broker; removing stale pid file"
    rm -f "$PID_FILE"
    return 0
  fi
  local dumping_cds=0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q ArchiveClassesAtExit && dumping_cds=1
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "still running after ${STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    # A CDS archive being written at exit may be truncated: drop it, next start redoes it.
    ((dumping_cds)) && rm -f "$LIB_DIR/kafka-broker.jsa"
  fi
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  if is_running && ping_broker; then
    echo "running (pid $(read_pid)) on $HOST:$PORT"
    return 0
  fi
  if is_running; then
    echo "process $(read_pid) alive but not answering on $HOST:$PORT"
  else
    echo "not running"
  fi
  return 1
}

cmd_wipe() {
  cmd_stop
  rm -rf "$DATA_DIR" "$LOG_DIR" "$CONF_DIR"
  log "wiped data and logs (jars kept in $LIB_DIR)"
}

need_jars() { have_jars || die "Kafka jars not fetched; run: $0 fetch (or start)"; }

cmd_topic_create() {
  local name="${1:?usage: topic-create NAME [PARTITIONS] [REPLICATION]}" parts="${2:-1}" rf="${3:-1}"
  need_jars
  run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$PORT" \
    --create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor "$rf"
}

# Serialise state-changing commands (e.g. two test harnesses calling `start` at once).
# fd 9 is closed for the broker JVM (see cmd_start) so the lock is not inherited.
take_lock() {
  mkdir -p "$HOME_DIR"
  exec 9>"$HOME_DIR/.lock"
  flock -w $((START_TIMEOUT + STOP_TIMEOUT + 60)) 9 || die "timed out waiting for $HOME_DIR/.lock"
}

case "${1:-}" in
  fetch)  require_java; take_lock; cmd_fetch ;;
  start)  take_lock; cmd_start ;;
  stop)   take_lock; cmd_stop ;;
  restart) take_lock; cmd_stop; cmd_start ;;
  status) cmd_status ;;
  env)    echo "KAFKA_BROKERS=$HOST:$PORT" ;;
  wipe)   take_lock; cmd_wipe ;;
  topic-create) shift; cmd_topic_create "$@" ;;
  topic-delete) need_jars; run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$PORT" \
                  --delete --if-exists --topic "${2:?usage: topic-delete NAME}" ;;
  topic-list) need_jars; run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$PORT" --list ;;
  topic-describe) need_jars; run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$PORT" \
                  --describe ${2:+--topic "$2"} ;;
  logs)   tail -n "${2:-100}" "$LOG_DIR/server.log" ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2 ;;
esac
