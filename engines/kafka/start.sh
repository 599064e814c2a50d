#!/usr/bin/env bash
# Fetches (once), configures, formats (once), starts and waits for a single-node KRaft Kafka.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

HERE="$ENGINES_DIR/kafka"
RUN="$ENGINES_RUN/kafka"
LIBS="$ENGINES_CACHE/kafka/libs-$(content_key "$HERE/pom.xml")"
KAFKA_DATA="$RUN/data"
LOG="$RUN/kafka.log"
HEAP="${PARLEY_KAFKA_HEAP:-512m}"

skip_if_running kafka "$KAFKA_PORT"

[[ -x "$JAVA" ]] || die "kafka: Java 17 not found (set PARLEY_JAVA)"
maven_libs "$HERE/pom.xml" "$LIBS"

mkdir -p "$RUN" "$KAFKA_DATA"
render "$HERE/server.properties.tmpl" "$RUN/server.properties" \
  "KAFKA_PORT=$KAFKA_PORT" "KAFKA_CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT" "KAFKA_DATA=$KAFKA_DATA"
echo "$LIBS" >"$RUN/libs"

require_free_port kafka "$KAFKA_PORT"
require_free_port kafka "$KAFKA_CONTROLLER_PORT"

# What bin/kafka-run-class.sh passes, with a smaller heap.
BROKER_OPTS=(-server "-Xms$HEAP" "-Xmx$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
  -Djava.awt.headless=true "-Dlog4j2.configurationFile=file://$HERE/log4j2.xml"
  -cp "$LIBS/*")
# Short-lived tool JVMs: C1 only and a serial GC start faster and use less CPU.
TOOL_OPTS=(-Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC
  "-Dlog4j2.configurationFile=file://$HERE/tools-log4j2.xml" -cp "$LIBS/*")

# Format the storage once (kafka.tools.StorageTool lives in kafka_2.13 in 4.1).
if [[ ! -f "$KAFKA_DATA/meta.properties" ]]; then
  t0="$(now)"
  cluster_id="$("$JAVA" "${TOOL_OPTS[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
  "$JAVA" "${TOOL_OPTS[@]}" kafka.tools.StorageTool format -t "$cluster_id" \
    -c "$RUN/server.properties" --ignore-formatted >>"$LOG" 2>&1 ||
    { tail -20 "$LOG" >&2; die "kafka: storage format failed"; }
  log "kafka: storage formatted (cluster id $cluster_id) in $(elapsed "$t0")s"
fi

t0="$(now)"
echo "---- start $(date -Is)" >>"$LOG"
spawn kafka "$LOG" "$JAVA" "${BROKER_OPTS[@]}" kafka.Kafka "$RUN/server.properties"
log "kafka: started pid $(cat "$(pidfile kafka)"), waiting for 127.0.0.1:$KAFKA_PORT"
wait_until kafka "${PARLEY_KAFKA_TIMEOUT:-120}" port_open "$KAFKA_PORT" || die "kafka: did not open its port"
wait_until kafka 60 "$HERE/check.sh" || die "kafka: port open but the broker does not answer"
secs="$(elapsed "$t0")"
echo "$secs" >"$RUN/ready-seconds"
log "kafka: ready on 127.0.0.1:$KAFKA_PORT in ${secs}s"
