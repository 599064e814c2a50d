#!/usr/bin/env bash
# Exit 0 when Cassandra answers CQL: "Starting listening for CQL clients" logged in this run,
# and a native-protocol v4 OPTIONS request on the native port gets a SUPPORTED (0x06) response.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
RUN="$ENGINES_RUN/cassandra"
current="$(tac "$RUN/cassandra.log" 2>/dev/null | sed "/^---- start/q" || true)"
[[ "$current" == *"Starting listening for CQL clients"* ]] || exit 1
port_open "$CASSANDRA_PORT" || exit 1
# Frame header: version 0x04 (request), flags 0, stream 0, opcode 0x05 OPTIONS, body length 0.
reply="$(timeout 5 bash -c '
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  printf "\x04\x00\x00\x00\x05\x00\x00\x00\x00" >&3
  head -c 5 <&3 | od -An -tx1
' _ "$CASSANDRA_PORT" | tr -d ' \n')" || exit 1
# Response: version 0x84, flags, stream 0000, opcode 0x06 SUPPORTED.
[[ "$reply" == 84??000006 ]]
