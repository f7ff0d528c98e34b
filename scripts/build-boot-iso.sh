#!/usr/bin/env bash
# Builds a bootable installer-style ISO holding the test guest: grub (BIOS and UEFI, made by
# grub-mkrescue from Debian's grub-pc-bin and grub-efi-amd64-bin) shows a boot menu on the
# serial console and the screen, then boots the test guest's kernel and initrd from the ISO.
# It stands in for "an OS installer ISO" in tests of DVD boot through the VM's firmware.
# The grub EFI image is unsigned: a secure-boot VM refuses it, as it would any unsigned ISO.
# Cached by recipe hash (this script + the test guest's own hash) under
#   ${VMHOST_GUEST_CACHE:-<repo>/.cache/guest}/boot-iso-<hash>/vmhost-boot.iso
# The last stdout line is the ISO's path.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${VMHOST_GUEST_CACHE:-$repo/.cache/guest}
log() { echo "build-boot-iso: $*" >&2; }

for tool in grub-mkrescue xorriso mformat; do
  command -v "$tool" >/dev/null || { log "error: $tool missing (scripts/install-deps.sh installs grub-common, xorriso, mtools)"; exit 1; }
done
for d in /usr/lib/grub/i386-pc /usr/lib/grub/x86_64-efi; do
  [[ -d $d ]] || { log "error: $d missing (install grub-pc-bin and grub-efi-amd64-bin)"; exit 1; }
done

guest=$("$repo/scripts/build-guest.sh" | tail -n 1)
hash=$( { cat "${BASH_SOURCE[0]}"; basename "$guest"; dpkg-query -W -f '${Version}' grub-common; } | sha256sum | cut -c1-16)
out="$cache_root/boot-iso-$hash"
if [[ -f $out/vmhost-boot.iso ]]; then echo "$out/vmhost-boot.iso"; exit 0; fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.boot-iso.lock"
flock 9
if [[ -f $out/vmhost-boot.iso ]]; then echo "$out/vmhost-boot.iso"; exit 0; fi
work=$(mktemp -d "$cache_root/.boot-iso.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tree/boot/grub" "$work/out"
cp "$guest/vmlinuz" "$guest/initrd.img" "$work/tree/boot/"
cat >"$work/tree/boot/grub/grub.cfg" <<'CFG'
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=3
set default=0
menuentry "vmhost test guest (from DVD)" {
  echo "vmhost-boot-iso: loading the test guest"
  linux /boot/vmlinuz console=ttyS0 quiet panic=-1 vmhost.hostname=dvd-guest
  initrd /boot/initrd.img
}
CFG
log "grub-mkrescue"
grub-mkrescue -o "$work/out/vmhost-boot.iso" "$work/tree" -- -volid VMHOST_BOOT >/dev/null 2>&1 || { log "error: grub-mkrescue failed"; exit 1; }
mv -T "$work/out" "$out" 2>/dev/null || [[ -f $out/vmhost-boot.iso ]]
log "built $out/vmhost-boot.iso ($(du -h "$out/vmhost-boot.iso" | cut -f1))"
echo "$out/vmhost-boot.iso"
