#!/usr/bin/env bash
# Builds a Node-API addon, native/<name>.c (vmhost-holes: lseek SEEK_DATA/SEEK_HOLE, flock,
# copies; vmhost-udp: the switch uplink's batched UDP socket), with gcc against Node's own
# headers, into a cache dir keyed by a hash of the source:
#   ${VMHOST_BIN_CACHE:-<repo>/.cache/bin}/<hash>/<name>.node
# The loader (src/blockio/file-map.ts, src/switch/udp-batch.ts) computes the same hash to find
# it (Node-API is ABI-stable across Node versions, so the source alone decides). Rebuilds only
# when the source changes. The last stdout line is the addon's path. Usage: build-addon.sh NAME.
# Needs: gcc, Node's headers (node_api.h: Debian's nodejs package ships /usr/include/node).
set -euo pipefail

name=${1:?usage: build-addon.sh NAME (native/NAME.c)}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src="$repo/native/$name.c"
cache_root=${VMHOST_BIN_CACHE:-$repo/.cache/bin}
log() { echo "build-addon $name: $*" >&2; }

hash=$(sha256sum "$src" | cut -c1-16)
out="$cache_root/$hash/$name.node"
if [[ -f $out ]]; then
  log "up to date: $out"
  echo "$out"
  exit 0
fi
command -v gcc >/dev/null || { log "error: gcc is needed"; exit 1; }
# The headers of the node that runs us (/usr/bin/node -> /usr/include/node; nvm and
# tarball installs keep include/node beside bin/), else node-gyp's download.
inc=$(node -p "require('path').resolve(process.execPath, '../../include/node')")
for d in "$inc" /usr/include/node "$HOME"/.cache/node-gyp/*/include/node; do
  if [[ -f $d/node_api.h ]]; then inc=$d; break; fi
done
[[ -f $inc/node_api.h ]] || { log "error: node_api.h not found (install Node's headers: Debian's nodejs package)"; exit 1; }

mkdir -p "$cache_root/$hash"
# Compile beside the target and rename: a concurrent build or a running daemon never sees half a file.
tmp=$(mktemp "$cache_root/$hash/.$name.XXXXXX")
trap 'rm -f "$tmp"' EXIT
gcc -O2 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden -I"$inc" -o "$tmp" "$src"
chmod 644 "$tmp"
mv -f "$tmp" "$out"
log "built $out"
echo "$out"
