#!/usr/bin/env bash
# Installs what vmhost needs on a fresh Debian 12 machine with Node 20: Debian packages
# (QEMU, firmware, the NICs' iPXE boot ROMs, dnsmasq for the network-boot test, guest-image
# tools, NBD clients, chromium for the web console's browser test) and the npm packages.
# Idempotent: only missing things are installed.
set -euo pipefail
cd "$(dirname "$0")/.."

# grub-*-bin, grub-common, xorriso, mtools: the bootable test ISO (scripts/build-boot-iso.sh);
# grub-rescue-pc: a bootable floppy image; ipxe-qemu, dnsmasq-base: network boot (PXE) test;
# mmdebstrap, fdisk, e2fsprogs: the real Debian guest (scripts/build-debian-guest.sh).
# openssl: the self-signed TLS certificate of a daemon listening off loopback (src/api/tls-certificate.ts).
# prometheus: promtool and a real Prometheus that scrapes the daemon's /metrics (test/resource-metering.test.ts).
# restic: the backup repository of Start-VMBackup (src/host/restic.ts, test/vm-backup.test.ts).
# etcd-server, etcd-client: failover clustering keeps membership, leases and ownership in etcd (src/cluster, test/support/etcd.ts).
# systemd: systemd-analyze verifies the shipped unit (packaging/systemd/vmhostd.service, test/install-service.test.ts).
DEBS=(qemu-system-x86 qemu-utils restic ovmf ipxe-qemu dnsmasq-base busybox-static cpio xz-utils gcc libc6-dev libnbd-bin zstd tshark chromium etcd-server etcd-client systemd
      grub-common grub-pc-bin grub-efi-amd64-bin xorriso mtools grub-rescue-pc mmdebstrap fdisk e2fsprogs openssl prometheus)
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

# The unprivileged user a root vmhostd's QEMUs drop to (-runas; src/host/qemu-user.ts).
if ! getent passwd vmhost-qemu >/dev/null; then
  echo "install-deps: adding system user vmhost-qemu"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vmhost-qemu
fi

# npm ci only when the lock file changed since the last install.
stamp=node_modules/.vmhost-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "install-deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
