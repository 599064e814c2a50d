#!/usr/bin/env bash
# Exit 0 when the S3 server answers a signed (SigV4) ListBuckets with HTTP 200.
# (x-amz-content-sha256 below is the SHA-256 of the empty body; versitygw requires it.)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
port_open "$S3_PORT" || exit 1
code="$(curl -s -m 5 -o /dev/null -w '%{http_code}' \
  -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
  --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
  "http://127.0.0.1:$S3_PORT/")"
[[ "$code" == 200 ]]
