# shellcheck shell=bash
# Shared helpers for the engine scripts. Sourced, never run.
# Every path and port can be overridden from the environment (see README.md).

ENGINES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENGINES_CACHE="${PARLEY_ENGINES_CACHE:-$ENGINES_DIR/.cache}"
ENGINES_RUN="${PARLEY_ENGINES_RUN:-$ENGINES_DIR/.run}"
ALL_ENGINES=(redis s3 kafka cassandra haproxy)

# Loopback ports (all non-default).
KAFKA_PORT="${PARLEY_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${PARLEY_KAFKA_CONTROLLER_PORT:-19093}"
CASSANDRA_PORT="${PARLEY_CASSANDRA_PORT:-19042}"
CASSANDRA_STORAGE_PORT="${PARLEY_CASSANDRA_STORAGE_PORT:-17000}"
REDIS_PORT="${PARLEY_REDIS_PORT:-16379}"
S3_PORT="${PARLEY_S3_PORT:-19000}"
S3_ACCESS_KEY="${PARLEY_S3_ACCESS_KEY:-parleytest}"
S3_SECRET_KEY="${PARLEY_S3_SECRET_KEY:-parleytestsecret}"
S3_REGION="${PARLEY_S3_REGION:-us-east-1}"
S3_BUCKET="${PARLEY_S3_BUCKET:-parley-test}"

# Java 17: Cassandra 5.0 does not run on 24+, and Kafka is pinned to the same JDK.
if [[ -z "${PARLEY_JAVA:-}" ]]; then
  if [[ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]]; then
    PARLEY_JAVA=/usr/lib/jvm/java-17-openjdk-amd64/bin/java
  else
    PARLEY_JAVA="$(command -v java || true)"
  fi
fi
JAVA="$PARLEY_JAVA"

log() { printf '[engines] %s\n' "$*" >&2; }
die() { printf '[engines] ERROR: %s\n' "$*" >&2; exit 1; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- processes -------------------------------------------------------------

pidfile() { echo "$ENGINES_RUN/$1/pid"; }

# Prints the pid of a running engine, or fails.
engine_pid() {
  local f pid
  f="$(pidfile "$1")"
  [[ -f "$f" ]] || return 1
  pid="$(cat "$f")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

# Starts a detached process (own session, survives the calling npm), records its pid.
# usage: spawn <engine> <logfile> <cmd...>
spawn() {
  local engine="$1" logfile="$2"
  shift 2
  mkdir -p "$ENGINES_RUN/$engine"
  setsid nohup "$@" >>"$logfile" 2>&1 </dev/null &
  echo $! >"$(pidfile "$engine")"
}

# Stops an engine: SIGTERM, wait up to <timeout> s, then SIGKILL.
stop_engine() {
  local engine="$1" timeout="${2:-30}" pid i
  if ! pid="$(engine_pid "$engine")"; then
    rm -f "$(pidfile "$engine")"
    log "$engine: not running"
    return 0
  fi
  local t0
  t0="$(now)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$engine: still running after ${timeout}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$(pidfile "$engine")"
  log "$engine: stopped (pid $pid) in $(elapsed "$t0")s"
}

# --- readiness ---------------------------------------------------------------

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# usage: wait_until <engine> <timeout s> <cmd...>; fails early if the engine process died.
wait_until() {
  local engine="$1" timeout="$2"
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! engine_pid "$engine" >/dev/null; then
      log "$engine: process exited before it was ready; last lines of its log:"
      tail -n 30 "$ENGINES_RUN/$engine/$engine.log" >&2 || true
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "$engine: not ready after ${timeout}s; last lines of its log:"
      tail -n 30 "$ENGINES_RUN/$engine/$engine.log" >&2 || true
      return 1
    fi
    sleep 0.25
  done
}

# Fails if a port we want is taken by a process that is not ours.
require_free_port() {
  local engine="$1" port="$2"
  if port_open "$port"; then
    die "$engine: port $port is already in use by another process (not ours); stop it or set PARLEY_*_PORT"
  fi
}

# --- installation helpers ---------------------------------------------------

# apt-get update at most once per up.sh run, then install the named packages.
apt_install() {
  local sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  local stamp="$ENGINES_RUN/.apt-updated.${PARLEY_ENGINES_SESSION:-$$}"
  if [[ ! -f "$stamp" ]]; then
    log "apt-get update"
    $sudo apt-get update -qq >&2
    mkdir -p "$ENGINES_RUN" && touch "$stamp"
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >&2
}

# Short content hash of files: cache keys change when a pom or version changes.
content_key() { cat "$@" | sha256sum | cut -c1-12; }

# Copies the runtime dependencies of <pom> into <libs dir> once. Maven's own local
# repository (~/.m2) is shared with other clones on the machine, so a fresh clone on the
# same machine resolves offline; the copied jars under engines/.cache make later runs skip
# Maven entirely.
maven_libs() {
  local pom="$1" libs="$2"
  [[ -f "$libs/.complete" ]] && return 0
  command -v mvn >/dev/null || die "mvn not found (Maven is needed to fetch $pom)"
  rm -rf "$libs"
  mkdir -p "$libs"
  local t0
  t0="$(now)"
  log "fetching jars for $pom into $libs"
  local args=(-B -q -f "$pom" dependency:copy-dependencies -DincludeScope=runtime "-DoutputDirectory=$libs")
  if ! mvn -o "${args[@]}" >/dev/null 2>&1; then
    mvn "${args[@]}" >&2 || die "Maven could not fetch the dependencies of $pom"
  fi
  touch "$libs/.complete"
  log "jars fetched in $(elapsed "$t0")s"
}

# Renders a template, replacing @KEY@ by the value of the shell variable KEY.
render() {
  local tmpl="$1" out="$2"
  shift 2
  local sed_args=() kv
  for kv in "$@"; do
    sed_args+=(-e "s|@${kv%%=*}@|${kv#*=}|g")
  done
  sed "${sed_args[@]}" "$tmpl" >"$out"
  if grep -q '@[A-Z_]*@' "$out"; then
    die "unreplaced placeholder in $out: $(grep -o '@[A-Z_]*@' "$out" | head -1)"
  fi
}

# Exits the calling start script when the engine already runs and answers; stops one that runs
# but does not answer, so it is started afresh.
skip_if_running() {
  local name="$1" port="$2" dir="$ENGINES_DIR/$1"
  if engine_pid "$name" >/dev/null && "$dir/check.sh" >/dev/null 2>&1; then
    log "$name: already running (pid $(engine_pid "$name")) on 127.0.0.1:$port"
    exit 0
  fi
  if engine_pid "$name" >/dev/null; then
    log "$name: process running but not answering; restarting it"
    "$dir/stop.sh"
  fi
}
