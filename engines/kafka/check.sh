#!/usr/bin/env bash
# Exit 0 when the broker answers: port open, "Kafka Server started" logged, and
# org.apache.kafka.tools.TopicCommand --list succeeds against it (a real client round trip).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
RUN="$ENGINES_RUN/kafka"
port_open "$KAFKA_PORT" || exit 1
# Only the log of the current run counts (start.sh writes a "---- start" marker).
current="$(tac "$RUN/kafka.log" 2>/dev/null | sed "/^---- start/q" || true)"
[[ "$current" == *"Kafka Server started"* ]] || exit 1
[[ "${1:-}" == --quick ]] && exit 0
LIBS="$(cat "$RUN/libs")"
timeout 30 "$JAVA" -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
  "-Dlog4j2.configurationFile=file://$ENGINES_DIR/kafka/tools-log4j2.xml" \
  -cp "$LIBS/*" org.apache.kafka.tools.TopicCommand \
  --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list >/dev/null 2>&1
