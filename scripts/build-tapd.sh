#!/usr/bin/env bash
# Builds the host vNIC helper (native/vmhost-tapd.c, see ARCHITECTURE.md) with gcc into a
# cache dir keyed by a hash of the source, this script and the gcc version:
#   ${VMHOST_BIN_CACHE:-<repo>/.cache/bin}/<hash>/vmhost-tapd
# Rebuilds only when one of them changes; worktrees sharing the cache never overwrite each
# other's binary. The last stdout line is the binary's path. Called by scripts/build.sh and,
# once per process, by the daemon when it first needs the helper (src/host/tapd.ts).
# Needs: gcc, libc6-dev (installed here with apt-get when missing and running as root).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src="$repo/native/vmhost-tapd.c"
cache_root=${VMHOST_BIN_CACHE:-$repo/.cache/bin}
log() { echo "build-tapd: $*" >&2; }

if ! command -v gcc >/dev/null || [[ ! -e /usr/include/linux/if_tun.h ]]; then
  [[ $(id -u) == 0 ]] || { log "error: gcc and libc6-dev are needed (run as root or apt-get install them)"; exit 1; }
  log "installing gcc libc6-dev"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev >&2
fi

hash=$( { cat "$src" "${BASH_SOURCE[0]}"; gcc --version | head -1; } | sha256sum | cut -c1-16)
out="$cache_root/$hash/vmhost-tapd"
if [[ -x $out ]]; then
  log "up to date: $out"
  echo "$out"
  exit 0
fi
mkdir -p "$cache_root/$hash"
# Compile beside the target and rename: a concurrent build or a running daemon never sees half a file.
tmp=$(mktemp "$cache_root/$hash/.vmhost-tapd.XXXXXX")
trap 'rm -f "$tmp"' EXIT
gcc -O2 -Wall -Wextra -Werror -o "$tmp" "$src"
chmod 755 "$tmp"
mv -f "$tmp" "$out"
log "built $out"
echo "$out"
