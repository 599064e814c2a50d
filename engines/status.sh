#!/usr/bin/env bash
# usage: engines/status.sh [--strict]
# Prints, for each engine, whether its process runs and whether it answers (the same
# check that up.sh waits for). With --strict, exits 1 unless every engine answers.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

strict=0
[[ "${1:-}" == --strict ]] && strict=1
bad=0
row() { printf '%-10s %-22s %-8s %-32s %s\n' "$@"; }
row ENGINE PROCESS ANSWERS ADDRESS "LAST READY (s)"
for e in redis s3 kafka cassandra haproxy; do
  case "$e" in
    redis) addr="redis://127.0.0.1:$REDIS_PORT" ;;
    s3) addr="http://127.0.0.1:$S3_PORT" ;;
    kafka) addr="127.0.0.1:$KAFKA_PORT (ctl $KAFKA_CONTROLLER_PORT)" ;;
    cassandra) addr="127.0.0.1:$CASSANDRA_PORT (storage $CASSANDRA_STORAGE_PORT)" ;;
    haproxy) addr="$(command -v haproxy || echo 'not installed')" ;;
  esac
  if [[ "$e" == haproxy ]]; then
    proc="n/a (installed only)"
  elif pid="$(engine_pid "$e")"; then
    proc="running (pid $pid)"
  else
    proc="stopped"
  fi
  if "$ENGINES_DIR/$e/check.sh" >/dev/null 2>&1; then ok=yes; else ok=no; bad=1; fi
  last="$(cat "$ENGINES_RUN/$e/ready-seconds" 2>/dev/null || echo -)"
  row "$e" "$proc" "$ok" "$addr" "$last"
done
if ((strict && bad)); then exit 1; fi
exit 0
