#!/usr/bin/env bash
# usage: engines/down.sh [--purge] [engine...]   (default all)
# Stops the engines that engines/up.sh started (by their recorded pids only). Data under
# engines/.run is kept unless --purge is given; the download cache is always kept.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ORDER=(cassandra kafka s3 redis haproxy)
purge=0
wanted=()
for a in "$@"; do
  case "$a" in
    --purge) purge=1 ;;
    *) [[ -x "$ENGINES_DIR/$a/stop.sh" ]] || die "unknown engine '$a' (known: ${ORDER[*]})"; wanted+=("$a") ;;
  esac
done
((${#wanted[@]})) || wanted=("${ORDER[@]}")

for e in "${ORDER[@]}"; do
  [[ " ${wanted[*]} " == *" $e "* ]] || continue
  "$ENGINES_DIR/$e/stop.sh"
  if ((purge)) && [[ -d "$ENGINES_RUN/$e" ]]; then
    rm -rf "${ENGINES_RUN:?}/$e"
    log "$e: data and logs removed"
  fi
done
