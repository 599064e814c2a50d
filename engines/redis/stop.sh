#!/usr/bin/env bash
# Stops Redis (its data is soft state and is not persisted).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
stop_engine redis 15
