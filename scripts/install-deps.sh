#!/usr/bin/env bash
# Installs what vmhost needs on a fresh Debian 12 machine with Node 20: Debian packages
# (QEMU, firmware, guest-image tools, NBD clients, chromium for the web console's browser
# test) and the npm packages. Idempotent: only missing things are installed.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(qemu-system-x86 qemu-utils ovmf busybox-static cpio xz-utils gcc libc6-dev libnbd-bin zstd tshark chromium
      mmdebstrap mtools fdisk e2fsprogs grub-pc-bin xorriso)  # second line: the Debian guest disk, ESP disks, integration ISO
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci only when the lock file changed since the last install.
stamp=node_modules/.vmhost-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "install-deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
