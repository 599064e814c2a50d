#!/usr/bin/env bash
# Stops the broker (SIGTERM: controlled shutdown), SIGKILL after 60 s. Keeps its data.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
stop_engine kafka 60
