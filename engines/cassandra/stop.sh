#!/usr/bin/env bash
# Stops Cassandra (SIGTERM runs its shutdown hook, which flushes the commit log), SIGKILL after 60 s.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
stop_engine cassandra 60
