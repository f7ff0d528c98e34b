#!/usr/bin/env bash
# Install vmhostd as a systemd service (packaging/systemd/vmhostd.service) running this checkout's
# bin/vmhostd with its data in /var/lib/vmhost. Idempotent: run it again after moving the checkout
# or updating the unit. It never overwrites /etc/default/vmhostd (the admin's options) once made.
#   scripts/install-service.sh [--root DIR] [--no-start]
#   --root DIR   install under DIR instead of / (packaging, tests); no systemctl calls then
#   --no-start   install and enable only
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
root=/
start=1
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="${2:?--root needs a directory}"; shift 2 ;;
    --no-start) start=0; shift ;;
    *) echo "install-service: unknown option $1" >&2; exit 2 ;;
  esac
done
root="${root%/}"
unit_dir="$root/etc/systemd/system"
unit="$unit_dir/vmhostd.service"

mkdir -p "$unit_dir" "$root/etc/default"
install -d -m 0700 "$root/var/lib/vmhost"

# A unit file with this checkout's path; replaced only when it changed (no needless daemon-reload).
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
install_unit() { # install_unit SOURCE TARGET
  mkdir -p "$(dirname "$2")"
  sed "s|@VMHOST_ROOT@|$here|g" "$1" >"$tmp"
  if ! cmp -s "$tmp" "$2" 2>/dev/null; then
    install -m 0644 "$tmp" "$2"
    echo "install-service: installed $2"
  else
    echo "install-service: $2 is up to date"
  fi
}
install_unit "$here/packaging/systemd/vmhostd.service" "$unit"
# A cluster node's etcd member rejoins by itself after a clean leave removed it (bin/vmhost-etcd-rejoin;
# it does nothing until VMHOST_ETCD_ENDPOINTS is set in /etc/default/etcd).
install_unit "$here/packaging/systemd/etcd.service.d/vmhost-rejoin.conf" "$unit_dir/etcd.service.d/vmhost-rejoin.conf"

defaults="$root/etc/default/vmhostd"
if [ ! -e "$defaults" ]; then
  cat >"$defaults" <<'DEFAULTS'
# vmhostd's options (see `bin/vmhostd --help`), read by vmhostd.service.
# A failover cluster node, with its own etcd member (/etc/default/etcd) listed first:
#VMHOSTD_ARGS="--listen 0.0.0.0:8470 --allow-remote --cluster-etcd-endpoints http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379 --cluster-storage /srv/vmhost-shared --cluster-drain-timeout 120"
VMHOSTD_ARGS="--listen 127.0.0.1:8470"
DEFAULTS
  chmod 0644 "$defaults"
  echo "install-service: wrote $defaults"
fi

# QEMU runs as its own user when the daemon is root (src/host/qemu-user.ts): no user, no start.
if [ "$root" = "" ] && ! getent passwd vmhost-qemu >/dev/null; then
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vmhost-qemu
  echo "install-service: added system user vmhost-qemu"
fi

if [ "$root" = "" ]; then
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable vmhostd.service
    [ "$start" = 1 ] && systemctl restart vmhostd.service
    echo "install-service: vmhostd.service enabled$([ "$start" = 1 ] && echo ' and started') (logs: journalctl -u vmhostd)"
  else
    echo "install-service: systemd is not running here: the unit is installed, start it on a systemd machine"
  fi
fi
