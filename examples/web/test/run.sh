#!/usr/bin/env bash
# The browser demo's tests (make test-web): the TypeScript simulation
# against Go's vectors, and the end-to-end test in Chromium. Where Node or
# Chromium is missing it says what it skips; under CI=true a missing tool
# is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() { # skip TOOL WHAT
  if [ "${CI:-}" = true ]; then
    echo "test-web: FAILED: $1 is missing, and CI must run $2" >&2
    exit 1
  fi
  echo "test-web: SKIPPED $2: $1 not found (install it to run them)"
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  skip "node and npm" "every test of the browser demo (examples/web)"
  exit 0
fi
./build.sh
npx tsc -p tsconfig.json
npx tsc -p tsconfig.test.json
node test/build-tests.mjs
tests=(build/sim.test.mjs)
if command -v "${CHROMIUM:-chromium}" >/dev/null; then
  tests+=(test/e2e.test.mjs)
else
  skip "${CHROMIUM:-chromium}" "the end-to-end test in Chromium (examples/web/test/e2e.test.mjs)"
fi
node --test "${tests[@]}"
