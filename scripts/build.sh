#!/usr/bin/env bash
# Builds what the daemon serves and runs: the host vNIC helper (scripts/build-tapd.sh, C, when
# its source changed), the hole-map and UDP batch addons (scripts/build-holes.sh, build-udp.sh;
# optional), the web console
# (web/ → web/dist, React + noVNC via Vite) and the CLI bundle (dist/cli/vmhost.mjs, esbuild) that bin/vmhost runs while it is newer than every
# source file. Each is rebuilt only when its inputs changed (the web console: web/, the host
# files it imports — vm-state.ts, common/ — and the lock file). Called by scripts/test.sh and
# scripts/start.sh after install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "build: host vNIC helper at $(scripts/build-tapd.sh | tail -n 1)"
# Optional: without the addon, raw images and VHDX payloads are mapped as all data (see build-holes.sh).
if holes=$(scripts/build-holes.sh | tail -n 1); then echo "build: hole-map addon at $holes"
else echo "build: hole-map addon unavailable: sparse files are read as all data"; fi
# Optional: without it, switch uplinks send and receive one datagram per call (see build-udp.sh).
if udp=$(scripts/build-udp.sh | tail -n 1); then echo "build: UDP batch addon at $udp"
else echo "build: UDP batch addon unavailable: switch uplinks use node:dgram"; fi

stamp=web/dist/.build-stamp
inputs=$( (find web -path web/dist -prune -o -type f -print; echo src/host/vm-state.ts; echo src/common/index.ts; echo src/common/errors.ts; echo package-lock.json) \
  | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
if [ -f web/dist/index.html ] && [ "$(cat "$stamp" 2>/dev/null)" = "$inputs" ]; then
  echo "build: web console up to date (web/dist)"
else
  echo "build: web console (npm run build:web)"
  npm run --silent build:web
  echo "$inputs" >"$stamp"
fi

# The CLI bundle sits at the same depth as src/cli so its import.meta paths (the checkout, the
# default data dir, package.json) resolve the same. npm packages stay external (node_modules).
if [ -f dist/cli/vmhost.mjs ] && [ -z "$(find src package-lock.json -newer dist/cli/vmhost.mjs -print -quit)" ]; then
  echo "build: CLI bundle up to date (dist/cli)"
else
  echo "build: CLI bundle (dist/cli/vmhost.mjs)"
  npx esbuild src/cli/vmhost.ts --bundle --platform=node --format=esm --target=node20 --packages=external \
    --outfile=dist/cli/vmhost.mjs.tmp --log-level=warning
  mv dist/cli/vmhost.mjs.tmp dist/cli/vmhost.mjs
fi
