#!/usr/bin/env bash
# HAProxy is only installed here: the cluster tests generate its configuration and run it
# themselves in front of their Parley processes. Nothing is started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
if ! command -v haproxy >/dev/null; then
  apt_install haproxy
fi
# Debian's package may start its own service with /etc/haproxy/haproxy.cfg; not ours, left alone.
log "haproxy: installed ($(haproxy -v 2>/dev/null | head -1 | awk '{print $3}')) at $(command -v haproxy); not started (the cluster tests run it)"
