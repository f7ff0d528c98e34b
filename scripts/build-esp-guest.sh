#!/usr/bin/env bash
# Builds two small UEFI-only disks from the test guest (scripts/build-guest.sh: Debian's
# signed cloud kernel + the busybox initramfs with the vmhost agent), for secure boot tests:
#   ${VMHOST_GUEST_CACHE:-<repo>/.cache/guest}/esp/<hash>/{esp-signed.vhdx,esp-unsigned.vhdx,manifest.json}
# Each is a dynamic VHDX with a GPT holding one EFI system partition:
#   esp-signed    EFI/BOOT/BOOTX64.EFI = shim (signed by Microsoft's UEFI CA), grubx64.efi =
#                 Debian's signed GRUB → grub.cfg → the signed kernel: boots under secure boot
#   esp-unsigned  EFI/BOOT/BOOTX64.EFI = Debian's unsigned monolithic GRUB (grub-efi-amd64-bin),
#                 same grub.cfg: the secure boot firmware refuses it ("Access Denied"),
#                 firmware without secure boot boots it
# Kernel command line: console=ttyS0 quiet panic=-1. The recipe is this script, the shared
# library, the test guest's build (its hash) and the three boot package versions.
# Progress goes to stderr; the last stdout line is the output dir.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${VMHOST_GUEST_CACHE:-$repo/.cache/guest}
me=build-esp-guest
# shellcheck source=lib/guest-disk.sh
. "$repo/scripts/lib/guest-disk.sh"
t0=$SECONDS

need_tools mformat:mtools sfdisk:fdisk
guest=$(bash "$repo/scripts/build-guest.sh" | tail -1)
[[ -f $guest/vmlinuz && -f $guest/initrd.img ]] || die "build-guest.sh gave no test guest ($guest)"

disk_mib=64
esp_start=2048; esp_mib=62   # 1 MiB … 63 MiB, the last MiB for the backup GPT
cmdline="console=ttyS0 quiet panic=-1"
declare -A ver=()
for p in shim-signed grub-efi-amd64-signed grub-efi-amd64-bin; do ver[$p]=$(pkg_version "$p"); done
hash=$( {
  cat "${BASH_SOURCE[0]}" "$repo/scripts/lib/guest-disk.sh"
  echo "guest=$(basename "$guest")"
  for p in "${!ver[@]}"; do echo "$p=${ver[$p]}"; done | LC_ALL=C sort
} | sha256sum | cut -c1-16)
out="$cache_root/esp/$hash"
if [[ -f $out/manifest.json ]]; then log "up to date: $out"; echo "$out"; exit 0; fi

mkdir -p "$cache_root/esp"
exec 9>"$cache_root/esp/.lock"
flock 9
if [[ -f $out/manifest.json ]]; then log "built meanwhile: $out"; echo "$out"; exit 0; fi
work=$(mktemp -d "$cache_root/esp/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/out"
for p in "${!ver[@]}"; do dpkg-deb -x "$(fetch_deb "$p" "${ver[$p]}")" "$work/pkgs"; done

# build_disk NAME BOOTX64 [GRUBX64]: one GPT disk with one ESP, as NAME.vhdx.
declare -A partuuid=() fsid=()
build_disk() {
  local name=$1 tree=$work/$1 serial
  mkdir -p "$tree/EFI/BOOT" "$tree/EFI/debian"
  cp "$2" "$tree/EFI/BOOT/BOOTX64.EFI"
  [[ -n ${3:-} ]] && cp "$3" "$tree/EFI/BOOT/grubx64.efi"
  cp "$guest/vmlinuz" "$tree/vmlinuz"
  cp "$guest/initrd.img" "$tree/initrd.img"
  serial=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
  fsid[$name]=$(echo "${serial:0:4}-${serial:4:4}" | tr a-f A-F)
  partuuid[$name]=$(cat /proc/sys/kernel/random/uuid)
  # Debian's GRUB (signed or not) sources $prefix/grub.cfg, prefix /EFI/debian on its
  # boot device, else $cmdpath/grub.cfg: the same file in both places.
  cat >"$tree/EFI/debian/grub.cfg" <<CFG
set timeout=0
search --no-floppy --fs-uuid --set=root ${fsid[$name]}
menuentry 'vmhost test guest ($name)' {
  linux /vmlinuz $cmdline
  initrd /initrd.img
}
CFG
  cp "$tree/EFI/debian/grub.cfg" "$tree/EFI/BOOT/grub.cfg"
  make_esp "$work/$name.esp" "$esp_mib" "$serial" "$tree"
  truncate -s "${disk_mib}M" "$work/$name.raw"
  sfdisk --quiet "$work/$name.raw" <<SFDISK
label: gpt
unit: sectors
start=$esp_start, size=$((esp_mib * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC3B8, uuid=${partuuid[$name]}, name="EFI system"
SFDISK
  put_image "$work/$name.raw" "$esp_start" "$work/$name.esp"
  to_vhdx "$work/$name.raw" "$work/out/$name.vhdx" 1MB
  chmod a-w "$work/out/$name.vhdx"
}
log "esp-signed: shim → signed GRUB → signed kernel"
build_disk esp-signed "$work/pkgs/usr/lib/shim/shimx64.efi.signed" "$work/pkgs/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
log "esp-unsigned: unsigned monolithic GRUB as BOOTX64.EFI"
build_disk esp-unsigned "$work/pkgs/usr/lib/grub/x86_64-efi/monolithic/grubx64.efi"

cat >"$work/out/manifest.json" <<JSON
{
  "hash": "$hash",
  "testGuest": "$guest",
  "kernelCommandLine": "$cmdline",
  "disks": {
    "esp-signed": { "file": "esp-signed.vhdx", "espPartuuid": "${partuuid[esp-signed]}", "espFsUuid": "${fsid[esp-signed]}", "bootx64": "shimx64.efi.signed", "grubx64": "grubx64.efi.signed", "bytes": $(stat -c %s "$work/out/esp-signed.vhdx") },
    "esp-unsigned": { "file": "esp-unsigned.vhdx", "espPartuuid": "${partuuid[esp-unsigned]}", "espFsUuid": "${fsid[esp-unsigned]}", "bootx64": "monolithic/grubx64.efi (unsigned)", "bytes": $(stat -c %s "$work/out/esp-unsigned.vhdx") }
  },
  "partition": { "number": 1, "startSector": $esp_start, "sectors": $((esp_mib * 2048)) },
  "virtualSize": $((disk_mib * 1048576)),
  "packages": { "shim-signed": "${ver[shim-signed]}", "grub-efi-amd64-signed": "${ver[grub-efi-amd64-signed]}", "grub-efi-amd64-bin": "${ver[grub-efi-amd64-bin]}" },
  "buildSeconds": $((SECONDS - t0)),
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
JSON
publish "$work/out" "$out"
log "built $out in $((SECONDS - t0)) s"
ls -1dt "$cache_root"/esp/*/manifest.json 2>/dev/null | tail -n +3 | while read -r m; do rm -rf "$(dirname "$m")"; done
echo "$out"
