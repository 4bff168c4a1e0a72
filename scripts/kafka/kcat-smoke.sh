#!/usr/bin/env bash
# Smoke test: kcat <-> the test broker. Needs a running broker (scripts/kafka.sh start).
# Creates a 3-partition topic with Kafka's TopicCommand, produces 100 keyed messages with
# kcat, consumes them back with `kcat -C -e` and checks all 100 arrive, spread over the
# 3 partitions. Then consumes again through a consumer group (-G) to exercise the group
# protocol (JoinGroup/SyncGroup/OffsetCommit). Exit 0 on success.
#   scripts/kafka/kcat-smoke.sh               # uses scripts/kcat (Debian's kcat)
#   KCAT_LIBRDKAFKA=cargo scripts/kafka/kcat-smoke.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KCAT="$HERE/../kcat"
eval "$("$HERE/../kafka.sh" env)"
topic="kcat-smoke-$$-$RANDOM"
n=100

"$HERE/../kafka.sh" topic-create "$topic" 3 >/dev/null
seq 1 "$n" | awk '{print "k" $1 ":msg-" $1}' \
  | timeout 30 "$KCAT" -b "$KAFKA_BROKERS" -P -t "$topic" -K: -X acks=all
out="$(timeout 30 "$KCAT" -b "$KAFKA_BROKERS" -C -t "$topic" -e -q -f '%p %k %s\n')"
got=$(printf '%s\n' "$out" | awk 'NF==3' | cut -d' ' -f3 | sort -u | wc -l)
parts=$(printf '%s\n' "$out" | awk 'NF==3{print $1}' | sort -u | wc -l)
grp=$(timeout 60 "$KCAT" -b "$KAFKA_BROKERS" -G "smoke-$topic" -X auto.offset.reset=earliest -e -q "$topic" | wc -l)
"$HERE/../kafka.sh" topic-delete "$topic" >/dev/null 2>&1 || true
echo "kcat-smoke: $("$KCAT" -V 2>&1 | grep -o 'librdkafka [0-9.]*'): consumed $got/$n distinct messages over $parts partitions; group consumer got $grp"
[[ "$got" -eq "$n" && "$parts" -eq 3 && "$grp" -eq "$n" ]]
