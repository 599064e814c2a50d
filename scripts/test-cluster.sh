#!/usr/bin/env bash
# The cluster-mode tests on the real engines: every cluster adapter's conformance suite, the
# schema tool, and the multi-process tests (HAProxy, failover, zombie, rolling restart, Kafka
# loss). Start the engines first: npm run engines:up. (`npm test` runs these too when the engines'
# variables are loaded, as .ci/run does.)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f engines/.run/env ]; then
  echo "the engines are not up: run npm run engines:up" >&2
  exit 1
fi
set -a
. engines/.run/env
set +a
exec node scripts/test.mjs packages/cluster/ test/cluster test/migrate-cluster "$@"
