#!/usr/bin/env bash
# Builds the web dashboard (dashboard/, a Vite app) into dashboard/dist, which the API serves at /dashboard/
# (DASHBOARD_DIR). Run by `make install`. Skipped when there is no dashboard/package.json, and when
# dashboard/dist is newer than every source file of the dashboard and of the TypeScript SDK it is built
# with, so that a second `make install` costs a `find`. `npm ci` runs only when package-lock.json changed
# since the last install (npm keeps its own copy in node_modules/.package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."

[ -f dashboard/package.json ] || exit 0

stamp=dashboard/dist/index.html
newer_sources() {
  find dashboard sdks/typescript \
    \( -name node_modules -o -path dashboard/dist -o -path sdks/typescript/dist \) -prune \
    -o -type f -newer "$stamp" -print -quit
}
if [ -f "$stamp" ] && [ -z "$(newer_sources)" ]; then
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "npm is missing: scripts/install-system-packages.sh installs Node.js and npm" >&2
  exit 1
fi
cd dashboard
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run build --silent
touch dist/index.html  # the build's time, for the check above (a build may keep an older index.html)
echo "dashboard built into dashboard/dist"
