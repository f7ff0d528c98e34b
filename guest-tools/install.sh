#!/bin/sh
# Installs the vmhost integration services into a systemd Linux guest from the mounted
# guest integration ISO (the directory this script is in): the static agent binary and
# its unit, then enables and starts the service. Idempotent; run as root.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=${VMHOST_INSTALL_ROOT:-}   # an alternative root (image building); empty = this system
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
[ -d /run/systemd/system ] || [ -n "$root" ] || { echo "install.sh: systemd is not running here" >&2; exit 1; }
install -D -m 0755 "$here/vmhost-agent" "$root/usr/sbin/vmhost-agent"
install -D -m 0644 "$here/vmhost-agent.service" "$root/etc/systemd/system/vmhost-agent.service"
# Dynamic memory: blocks the host plugs (virtio-mem) go online at once, and movable, so that
# they can be unplugged again; Debian's udev leaves hot-added memory offline.
mkdir -p "$root/etc/udev/rules.d"
echo 'SUBSYSTEM=="memory", ACTION=="add", ATTR{state}=="offline", ATTR{state}="online_movable"' >"$root/etc/udev/rules.d/80-vmhost-memory-hotplug.rules"
if [ -n "$root" ]; then
  # Offline: the [Install] section's link, as systemctl enable would make it.
  mkdir -p "$root/etc/systemd/system/sysinit.target.wants"
  ln -sf ../vmhost-agent.service "$root/etc/systemd/system/sysinit.target.wants/vmhost-agent.service"
else
  systemctl daemon-reload
  systemctl enable vmhost-agent.service
  # restart, not start: a reinstall from a newer ISO must run the new binary.
  systemctl restart vmhost-agent.service
fi
echo "install.sh: vmhost-agent installed"
