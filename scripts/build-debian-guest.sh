#!/usr/bin/env bash
# Builds a real Debian 12 guest disk from Debian packages only, into a cache dir keyed by
# a hash of the recipe:
#   ${VMHOST_GUEST_CACHE:-<repo>/.cache/guest}/debian/<hash>/{disk.vhdx,manifest.json}
# (one level below the cache root: build-guest.sh prunes every <root>/*/manifest.json but its newest three)
# disk.vhdx is a dynamic VHDX (vmhost's own engine) with a GPT:
#   1 BIOS boot (GRUB i386-pc core.img: Generation 1 / SeaBIOS)
#   2 EFI system partition: shim (signed) → GRUB (signed) → grub.cfg (Generation 2, secure boot)
#   3 ext4 root: minbase + systemd, udev, the cloud kernel, systemd-networkd (DHCP on every
#     ethernet link), mokutil, the vmhost agent as vmhost-agent.service
# Tests use it as the read-only parent of a differencing disk or a qcow2 overlay.
# The recipe is this script, scripts/lib/guest-disk.sh, guest-agent/agent.c, guest-tools/,
# and the versions of the kernel, systemd, shim-signed and grub-efi-amd64-signed packages
# (other packages come in at their current version when the recipe changes). Rebuilds only
# when one of them changes. Progress goes to stderr; the last stdout line is the output dir.
#
# Env: VMHOST_GUEST_CACHE  cache root
# Needs root (mmdebstrap --mode=root, chroot) and: mmdebstrap, mtools, fdisk, e2fsprogs,
# grub-pc-bin, gcc, libc6-dev (installed with apt-get when missing).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${VMHOST_GUEST_CACHE:-$repo/.cache/guest}
me=build-debian-guest
# shellcheck source=lib/guest-disk.sh
. "$repo/scripts/lib/guest-disk.sh"
t0=$(date +%s)

[[ $(id -u) == 0 ]] || die "needs root (mmdebstrap --mode=root)"
need_tools mmdebstrap:mmdebstrap mformat:mtools sfdisk:fdisk mkfs.ext4:e2fsprogs \
  /usr/lib/grub/i386-pc/boot.img:grub-pc-bin grub-mkimage:grub-pc-bin gcc:gcc \
  /usr/lib/x86_64-linux-gnu/libc.a:libc6-dev

# Layout (512-byte sectors). Sizes are virtual: the VHDX stores only what was written.
disk_mib=4096
bios_start=2048; bios_sectors=2048                  # 1 MiB at 1 MiB
esp_start=4096;  esp_mib=64                         # 2 MiB … 66 MiB
root_start=$((esp_start + esp_mib * 2048))          # 66 MiB … end − 1 MiB (backup GPT)
root_mib=$((disk_mib - 66 - 1))
packages=(systemd-sysv udev linux-image-cloud-amd64 kmod initramfs-tools e2fsprogs iproute2
          mokutil dbus procps)

# --- recipe hash -------------------------------------------------------------------
declare -A ver=()
for p in linux-image-cloud-amd64 systemd shim-signed grub-efi-amd64-signed; do ver[$p]=$(pkg_version "$p"); done
hash=$( {
  cat "${BASH_SOURCE[0]}" "$repo/scripts/lib/guest-disk.sh" "$repo/guest-agent/agent.c"
  (cd "$repo/guest-tools" && find . -type f | LC_ALL=C sort | while read -r f; do echo "== $f"; cat "$f"; done)
  for p in "${!ver[@]}"; do echo "$p=${ver[$p]}"; done | LC_ALL=C sort
} | sha256sum | cut -c1-16)
out="$cache_root/debian/$hash"
if [[ -f $out/manifest.json && -f $out/disk.vhdx ]]; then log "up to date: $out"; echo "$out"; exit 0; fi

# --- build -------------------------------------------------------------------------
mkdir -p "$cache_root/debian"
exec 9>"$cache_root/debian/.lock"
flock 9
if [[ -f $out/manifest.json ]]; then log "built meanwhile: $out"; echo "$out"; exit 0; fi
work=$(mktemp -d "$cache_root/debian/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree=$work/tree
mkdir -p "$work/out"

root_partuuid=$(cat /proc/sys/kernel/random/uuid)
esp_partuuid=$(cat /proc/sys/kernel/random/uuid)
bios_partuuid=$(cat /proc/sys/kernel/random/uuid)
root_fsuuid=$(cat /proc/sys/kernel/random/uuid)
disk_guid=$(cat /proc/sys/kernel/random/uuid)
esp_serial=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
esp_fsid="${esp_serial:0:4}-${esp_serial:4:4}"; esp_fsid=${esp_fsid^^}
# Root checked (pass 1) by the initramfs, remounted rw by systemd-remount-fs; the ESP is
# optional. Both files go in before the kernel is installed: initramfs-tools adds fsck
# only for a root file system type it knows, and it never trusts fstab's type for / (it
# probes the device, which does not exist at build time) — FSTYPE names it.
echo 'FSTYPE=ext4' >"$work/initramfs.conf"
cat >"$work/fstab" <<FSTAB
PARTUUID=$root_partuuid  /          ext4  errors=remount-ro  0 1
PARTUUID=$esp_partuuid   /boot/efi  vfat  umask=0077,nofail  0 0
FSTAB

log "mmdebstrap bookworm (${packages[*]})"
# No mirror argument: the machine's apt sources, security updates included.
inc=$(IFS=,; echo "${packages[*]}")
mmdebstrap --quiet --variant=minbase --mode=root --include="$inc" \
  --essential-hook="cp '$work/fstab' \"\$1/etc/fstab\"" \
  --essential-hook="mkdir -p \"\$1/etc/initramfs-tools/conf.d\" && cp '$work/initramfs.conf' \"\$1/etc/initramfs-tools/conf.d/vmhost.conf\"" \
  bookworm "$tree" >&2
t_debootstrap=$(($(date +%s) - t0))

vmlinuz=$(ls "$tree"/boot/vmlinuz-* | head -1)
kver=${vmlinuz##*/vmlinuz-}
[[ -f $tree/boot/initrd.img-$kver ]] || die "no initramfs for $kver in the tree"
# The root must be checked before it is mounted (a crashed guest's journal replayed, no
# second fsck by systemd): fail the build rather than ship an initramfs without fsck.
gzip -dc "$tree/boot/initrd.img-$kver" | cpio -t --quiet 2>/dev/null | grep -q 'sbin/fsck.ext4$' \
  || die "the initramfs has no fsck.ext4"

cmdline="root=PARTUUID=$root_partuuid ro console=tty0 console=ttyS0,115200"

log "configuring the tree (kernel $kver)"
echo debian >"$tree/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$tree/etc/hosts"
mkdir -p "$tree/boot/efi"
cat >"$tree/etc/systemd/network/80-dhcp.network" <<'NET'
# Every ethernet link gets its addresses by DHCP (IPv4 and IPv6 router advertisements).
[Match]
Type=ether

[Network]
DHCP=yes
NET
# A test image: root has no password (console login on ttyS0/tty0 for debugging).
chroot "$tree" passwd -d root >/dev/null
compile_agent "$work/vmhost-agent"
mkdir -p "$work/iso"
cp "$work/vmhost-agent" "$repo/guest-tools/vmhost-agent.service" "$repo/guest-tools/install.sh" "$work/iso/"
VMHOST_INSTALL_ROOT=$tree sh "$work/iso/install.sh" >&2
chroot "$tree" systemctl enable --quiet systemd-networkd.service
# Nothing here needs network-online.target; a NIC without DHCP must not delay the boot.
chroot "$tree" systemctl disable --quiet systemd-networkd-wait-online.service 2>/dev/null || true
rm -f "$tree/etc/machine-id" && touch "$tree/etc/machine-id"  # a fresh id per VM (first boot)
rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/lib/apt/lists/*

# --- ESP: Debian's signed boot chain, the config shared with BIOS GRUB --------------
for p in shim-signed grub-efi-amd64-signed; do dpkg-deb -x "$(fetch_deb "$p" "${ver[$p]}")" "$work/pkgs"; done
esp=$work/esp
mkdir -p "$esp/EFI/BOOT" "$esp/EFI/debian"
cp "$work/pkgs/usr/lib/shim/shimx64.efi.signed" "$esp/EFI/BOOT/BOOTX64.EFI"
cp "$work/pkgs/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" "$esp/EFI/BOOT/grubx64.efi"
# The signed GRUB sources $prefix/grub.cfg (prefix /EFI/debian), else $cmdpath/grub.cfg.
cat >"$esp/EFI/debian/grub.cfg" <<CFG
set timeout=0
set default=0
if [ "\$grub_platform" = pc ]; then
  serial --unit=0 --speed=115200
  terminal_input console serial
  terminal_output console serial
fi
search --no-floppy --fs-uuid --set=root $root_fsuuid
menuentry 'Debian GNU/Linux 12 ($kver)' {
  linux /boot/vmlinuz-$kver $cmdline
  initrd /boot/initrd.img-$kver
}
CFG
cp "$esp/EFI/debian/grub.cfg" "$esp/EFI/BOOT/grub.cfg"
make_esp "$work/esp.img" "$esp_mib" "$esp_serial" "$esp"

# --- root file system and the disk -------------------------------------------------
log "mkfs.ext4 -d (${root_mib} MiB)"
truncate -s "${root_mib}M" "$work/root.img"
mkfs.ext4 -q -F -L root -U "$root_fsuuid" -E lazy_itable_init=0,lazy_journal_init=0 -d "$tree" "$work/root.img"
truncate -s "${disk_mib}M" "$work/disk.raw"
sfdisk --quiet "$work/disk.raw" <<SFDISK
label: gpt
label-id: $disk_guid
unit: sectors
first-lba: 2048
start=$bios_start, size=$bios_sectors, type=21686148-6449-6E6F-744E-656564454649, uuid=$bios_partuuid, name="BIOS boot"
start=$esp_start, size=$((esp_mib * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC3B8, uuid=$esp_partuuid, name="EFI system"
start=$root_start, size=$((root_mib * 2048)), type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$root_partuuid, name="root"
SFDISK
put_image "$work/disk.raw" "$esp_start" "$work/esp.img"
put_image "$work/disk.raw" "$root_start" "$work/root.img"
cat >"$work/early.cfg" <<CFG
search --no-floppy --fs-uuid --set=root $esp_fsid
set prefix=(\$root)/EFI/debian
configfile \$prefix/grub.cfg
CFG
install_bios_grub "$work/disk.raw" "$bios_start" "$work/early.cfg"

log "converting to a dynamic VHDX"
# 1 MiB blocks: ext4 spreads metadata over every block group, and 32 MiB blocks would
# store twice the data the file system holds.
to_vhdx "$work/disk.raw" "$work/out/disk.vhdx" 1MB
chmod a-w "$work/out/disk.vhdx"  # the shared base of every test's overlay

# --- manifest ----------------------------------------------------------------------
pkgs_json=$(chroot "$tree" dpkg-query -W -f '${Package}\t${Version}\n' | LC_ALL=C sort \
  | awk -F'\t' 'BEGIN { printf "{" } { printf "%s\"%s\":\"%s\"", (NR > 1 ? "," : ""), $1, $2 } END { printf "}" }')
cat >"$work/out/manifest.json" <<JSON
{
  "hash": "$hash",
  "os": "Debian GNU/Linux 12 (bookworm)",
  "hostname": "debian",
  "kernelVersion": "$kver",
  "kernelCommandLine": "$cmdline",
  "disk": { "file": "disk.vhdx", "format": "VHDX", "type": "Dynamic", "virtualSize": $((disk_mib * 1048576)), "diskGuid": "$disk_guid" },
  "partitions": [
    { "number": 1, "name": "BIOS boot", "startSector": $bios_start, "sectors": $bios_sectors, "partuuid": "$bios_partuuid", "content": "GRUB i386-pc core.img" },
    { "number": 2, "name": "EFI system", "startSector": $esp_start, "sectors": $((esp_mib * 2048)), "partuuid": "$esp_partuuid", "fsUuid": "$esp_fsid", "content": "FAT32: EFI/BOOT/BOOTX64.EFI (shim), EFI/BOOT/grubx64.efi (signed GRUB), EFI/debian/grub.cfg" },
    { "number": 3, "name": "root", "startSector": $root_start, "sectors": $((root_mib * 2048)), "partuuid": "$root_partuuid", "fsUuid": "$root_fsuuid", "content": "ext4 /" }
  ],
  "agentPort": "org.vmhost.agent.0",
  "agentService": "vmhost-agent.service",
  "rootPassword": "none (empty)",
  "bootPackages": { "shim-signed": "${ver[shim-signed]}", "grub-efi-amd64-signed": "${ver[grub-efi-amd64-signed]}", "grub-pc-bin (host)": "$(dpkg-query -W -f '${Version}' grub-pc-bin)" },
  "packages": $pkgs_json,
  "treeBytes": $(du -sb "$tree" | cut -f1),
  "rawAllocatedBytes": $(( $(stat -c %b "$work/disk.raw") * 512 )),
  "vhdxBytes": $(stat -c %s "$work/out/disk.vhdx"),
  "buildSeconds": { "mmdebstrap": $t_debootstrap, "total": $(($(date +%s) - t0)) },
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
JSON
publish "$work/out" "$out"
log "built $out in $(($(date +%s) - t0)) s (vhdx $(du -h "$out/disk.vhdx" | cut -f1))"
# Keep the two newest Debian builds.
ls -1dt "$cache_root"/debian/*/manifest.json 2>/dev/null | tail -n +3 | while read -r m; do rm -rf "$(dirname "$m")"; done
echo "$out"
