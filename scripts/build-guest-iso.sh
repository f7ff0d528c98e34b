#!/usr/bin/env bash
# Builds the vmhost guest integration ISO (like Hyper-V's vmguest.iso): an ISO 9660 +
# Rock Ridge + Joliet image, volume id VMHOST_GUEST, holding
#   vmhost-agent          the agent, static (runs on any x86-64 Linux)
#   vmhost-agent.service  its systemd unit
#   install.sh            installs both into a systemd guest and enables the service
#   README.txt, manifest.json
# into ${VMHOST_GUEST_CACHE:-<repo>/.cache/guest}/iso/<hash>/{vmguest.iso,manifest.json}.
# The recipe is this script, the shared library, guest-agent/agent.c and guest-tools/.
# Progress goes to stderr; the last stdout line is the output dir.
# Needs: xorriso, gcc, libc6-dev.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${VMHOST_GUEST_CACHE:-$repo/.cache/guest}
me=build-guest-iso
# shellcheck source=lib/guest-disk.sh
. "$repo/scripts/lib/guest-disk.sh"
t0=$SECONDS

need_tools xorriso:xorriso gcc:gcc /usr/lib/x86_64-linux-gnu/libc.a:libc6-dev
hash=$( {
  cat "${BASH_SOURCE[0]}" "$repo/scripts/lib/guest-disk.sh" "$repo/guest-agent/agent.c"
  (cd "$repo/guest-tools" && find . -type f | LC_ALL=C sort | while read -r f; do echo "== $f"; cat "$f"; done)
  echo "gcc=$(gcc -dumpfullversion) libc=$(dpkg-query -W -f '${Version}' libc6-dev)"
} | sha256sum | cut -c1-16)
out="$cache_root/iso/$hash"
if [[ -f $out/manifest.json && -f $out/vmguest.iso ]]; then log "up to date: $out"; echo "$out"; exit 0; fi

mkdir -p "$cache_root/iso"
exec 9>"$cache_root/iso/.lock"
flock 9
if [[ -f $out/manifest.json ]]; then log "built meanwhile: $out"; echo "$out"; exit 0; fi
work=$(mktemp -d "$cache_root/iso/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/iso" "$work/out"

log "compiling agent"
compile_agent "$work/iso/vmhost-agent"
install -m 0644 "$repo/guest-tools/vmhost-agent.service" "$work/iso/"
install -m 0755 "$repo/guest-tools/install.sh" "$work/iso/"
cat >"$work/iso/README.txt" <<'TXT'
vmhost guest integration services for Linux guests with systemd.
Install (as root):  mount /dev/sr0 /mnt && sh /mnt/install.sh
The agent speaks to the host over the virtio-serial port org.vmhost.agent.0
(heartbeat, key/value exchange, exec, shutdown).
TXT
agent_sha=$(sha256sum "$work/iso/vmhost-agent" | cut -d' ' -f1)
cat >"$work/iso/manifest.json" <<JSON
{ "hash": "$hash", "agentSha256": "$agent_sha", "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)" }
JSON
# Rock Ridge keeps the executable bits (install.sh runs as ./install.sh too); Joliet for
# Windows-side tools that list the ISO. Fixed dates so the same recipe makes the same bytes
# apart from manifest.json's build time.
xorriso -no_rc -abort_on FAILURE -outdev "$work/out/vmguest.iso" -volid VMHOST_GUEST \
  -joliet on -rockridge on -map "$work/iso" / -commit 2>"$work/xorriso.log" \
  || { cat "$work/xorriso.log" >&2; die "xorriso failed"; }
cat >"$work/out/manifest.json" <<JSON
{
  "hash": "$hash",
  "file": "vmguest.iso",
  "volumeId": "VMHOST_GUEST",
  "files": ["vmhost-agent", "vmhost-agent.service", "install.sh", "README.txt", "manifest.json"],
  "agentSha256": "$agent_sha",
  "bytes": $(stat -c %s "$work/out/vmguest.iso"),
  "buildSeconds": $((SECONDS - t0)),
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
JSON
chmod a-w "$work/out/vmguest.iso"
publish "$work/out" "$out"
log "built $out ($(stat -c %s "$out/vmguest.iso") bytes) in $((SECONDS - t0)) s"
ls -1dt "$cache_root"/iso/*/manifest.json 2>/dev/null | tail -n +3 | while read -r m; do rm -rf "$(dirname "$m")"; done
echo "$out"
