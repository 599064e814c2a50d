#!/usr/bin/env bash
# Exit 0 when the haproxy binary is installed (nothing is started by engines/).
set -euo pipefail
command -v haproxy >/dev/null
