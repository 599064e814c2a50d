#!/usr/bin/env bash
# Installs Debian's redis-server if missing, starts it on loopback, waits for PING.
# Parley keeps only soft state in Redis, so persistence is off (no RDB, no AOF).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

HERE="$ENGINES_DIR/redis"
RUN="$ENGINES_RUN/redis"
LOG="$RUN/redis.log"

skip_if_running redis "$REDIS_PORT"

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  apt_install redis-server redis-tools
fi
# Debian's package may start its own service on 6379; that one is not ours and is left alone.

mkdir -p "$RUN"
require_free_port redis "$REDIS_PORT"

t0="$(now)"
echo "---- start $(date -Is)" >>"$LOG"
spawn redis "$LOG" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
  --dir "$RUN" --save "" --appendonly no --daemonize no --loglevel notice \
  --io-threads 1 --maxclients 10000
log "redis: started pid $(cat "$(pidfile redis)"), waiting for 127.0.0.1:$REDIS_PORT"
wait_until redis "${PARLEY_REDIS_TIMEOUT:-30}" "$HERE/check.sh" || die "redis: not ready"
secs="$(elapsed "$t0")"
echo "$secs" >"$RUN/ready-seconds"
log "redis: ready on redis://127.0.0.1:$REDIS_PORT in ${secs}s"
