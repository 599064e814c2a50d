#!/usr/bin/env bash
# Builds (once) and starts versitygw, an Apache-2.0 S3-compatible gateway, with its posix
# backend on a local directory (object metadata in a sidecar directory, so no xattrs needed),
# then creates the test bucket.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

VERSITYGW_VERSION="${PARLEY_VERSITYGW_VERSION:-v1.8.0}"
HERE="$ENGINES_DIR/s3"
RUN="$ENGINES_RUN/s3"
BIN_DIR="$ENGINES_CACHE/s3/versitygw-$VERSITYGW_VERSION"
BIN="$BIN_DIR/versitygw"
LOG="$RUN/s3.log"

skip_if_running s3 "$S3_PORT"

if [[ ! -x "$BIN" ]]; then
  command -v go >/dev/null || die "s3: go not found (needed to build versitygw)"
  t0="$(now)"
  log "s3: building versitygw $VERSITYGW_VERSION (go install, a few minutes the first time)"
  mkdir -p "$BIN_DIR"
  # Module downloads go to Go's own module cache (shared by clones on this machine).
  (cd "$BIN_DIR" && GOBIN="$BIN_DIR" GOFLAGS=-buildvcs=false nice -n 10 \
    go install -trimpath "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION") >&2 ||
    die "s3: go install of versitygw failed"
  log "s3: versitygw built in $(elapsed "$t0")s"
fi

mkdir -p "$RUN/data" "$RUN/meta"
require_free_port s3 "$S3_PORT"

t0="$(now)"
echo "---- start $(date -Is)" >>"$LOG"
ROOT_ACCESS_KEY="$S3_ACCESS_KEY" ROOT_SECRET_KEY="$S3_SECRET_KEY" VGW_REGION="$S3_REGION" \
  spawn s3 "$LOG" "$BIN" --port "127.0.0.1:$S3_PORT" --quiet \
  posix --sidecar "$RUN/meta" "$RUN/data"
log "s3: started pid $(cat "$(pidfile s3)"), waiting for http://127.0.0.1:$S3_PORT"
wait_until s3 "${PARLEY_S3_TIMEOUT:-60}" "$HERE/check.sh" || die "s3: not ready"
secs="$(elapsed "$t0")"
echo "$secs" >"$RUN/ready-seconds"
log "s3: ready on http://127.0.0.1:$S3_PORT in ${secs}s"

# The test bucket (idempotent: 200 when created, 409 when it already exists). curl 7.88
# does not send x-amz-content-sha256, which versitygw requires: give the hash of the empty body.
code="$(curl -s -o /dev/null -w '%{http_code}' -X PUT \
  -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
  --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
  "http://127.0.0.1:$S3_PORT/$S3_BUCKET")"
case "$code" in
  200 | 409) log "s3: bucket $S3_BUCKET present" ;;
  *) die "s3: creating bucket $S3_BUCKET answered HTTP $code" ;;
esac
