#!/usr/bin/env bash
# Builds what the daemon serves and runs: the host vNIC helper (scripts/build-tapd.sh, C, when
# its source changed) and the web console (web/ → web/dist, React + noVNC via Vite). The console
# is rebuilt only when web/, the host files it imports (vm-state.ts, common/) or the lock file
# changed since the last build. Called by scripts/test.sh and scripts/start.sh after
# install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "build: host vNIC helper at $(scripts/build-tapd.sh | tail -n 1)"

stamp=web/dist/.build-stamp
inputs=$( (find web -path web/dist -prune -o -type f -print; echo src/host/vm-state.ts; echo src/common/index.ts; echo src/common/errors.ts; echo package-lock.json) \
  | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
if [ -f web/dist/index.html ] && [ "$(cat "$stamp" 2>/dev/null)" = "$inputs" ]; then
  echo "build: web console up to date (web/dist)"
  exit 0
fi
echo "build: web console (npm run build:web)"
npm run --silent build:web
echo "$inputs" >"$stamp"
