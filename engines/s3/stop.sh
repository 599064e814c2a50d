#!/usr/bin/env bash
# Stops versitygw. Keeps its data.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
stop_engine s3 15
