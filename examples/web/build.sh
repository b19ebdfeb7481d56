#!/usr/bin/env bash
# Builds the page into dist/ (make demo, make test-web): node_modules as
# package-lock.json says (installed again when it changed), then the bundle.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
node build.mjs
