#!/usr/bin/env bash
# usage: engines/up.sh [engine...]   (engines: haproxy redis s3 kafka cassandra; default all)
# Fetches/builds what is missing (cached under engines/.cache), starts each engine on
# loopback, waits until it really answers, prints how long each took, and writes the
# connection settings to engines/.run/env. Idempotent: running engines are left alone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ORDER=(haproxy redis s3 kafka cassandra)
wanted=("$@")
((${#wanted[@]})) || wanted=("${ORDER[@]}")
for e in "${wanted[@]}"; do
  [[ -x "$ENGINES_DIR/$e/start.sh" ]] || die "unknown engine '$e' (known: ${ORDER[*]})"
done

mkdir -p "$ENGINES_RUN" "$ENGINES_CACHE"
export PARLEY_ENGINES_SESSION="$$"
trap 'rm -f "$ENGINES_RUN/.apt-updated.$$"' EXIT

write_env() {
  local f="$ENGINES_RUN/env"
  cat >"$f.tmp" <<ENV
# Written by engines/up.sh. Plain KEY=value lines: \`node --env-file=engines/.run/env\`,
# or in a shell: set -a; . engines/.run/env; set +a
PARLEY_TEST_KAFKA=127.0.0.1:$KAFKA_PORT
PARLEY_TEST_CASSANDRA=127.0.0.1:$CASSANDRA_PORT
PARLEY_TEST_CASSANDRA_DC=datacenter1
PARLEY_TEST_REDIS=redis://127.0.0.1:$REDIS_PORT
PARLEY_TEST_S3=http://127.0.0.1:$S3_PORT
PARLEY_TEST_S3_REGION=$S3_REGION
PARLEY_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY
PARLEY_TEST_S3_SECRET_KEY=$S3_SECRET_KEY
PARLEY_TEST_S3_BUCKET=$S3_BUCKET
PARLEY_TEST_HAPROXY=$(command -v haproxy || echo haproxy)
ENV
  mv "$f.tmp" "$f"
}

t_all="$(now)"
summary=()
for e in "${ORDER[@]}"; do
  [[ " ${wanted[*]} " == *" $e "* ]] || continue
  t0="$(now)"
  rm -f "$ENGINES_RUN/$e/ready-seconds"
  "$ENGINES_DIR/$e/start.sh"
  total="$(elapsed "$t0")"
  if [[ -f "$ENGINES_RUN/$e/ready-seconds" ]]; then
    summary+=("$(printf '%-10s ready in %6ss after launch  (%6ss including fetch/config)' "$e" "$(cat "$ENGINES_RUN/$e/ready-seconds")" "$total")")
  else
    summary+=("$(printf '%-10s %s  (%6ss)' "$e" "already running, or nothing to start" "$total")")
  fi
done
write_env

log "all requested engines ready in $(elapsed "$t_all")s:"
printf '  %s\n' "${summary[@]}" >&2
log "settings written to $ENGINES_RUN/env"
