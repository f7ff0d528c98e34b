# Shared by the guest disk builders (build-debian-guest.sh, build-esp-guest.sh,
# build-guest-iso.sh): host tools, Debian package files, the static agent, ESP and GPT
# images without root or loop devices, BIOS GRUB on an image file, atomic publish.
# Sourced, never run; the caller sets `me` (log prefix), `repo` and `cache_root`.
# shellcheck shell=bash

log() { echo "$me: [$((SECONDS))s] $*" >&2; }
die() { log "error: $*"; exit 1; }

apt_updated=0
apt_update() { if [[ $apt_updated == 0 ]]; then log "apt-get update"; apt-get update -qq >&2; apt_updated=1; fi; }

# need_tools cmd:package…  Installs the packages of missing commands (root only).
need_tools() {
  local want=() pair
  for pair in "$@"; do
    if [[ ${pair%%:*} == /* ]]; then [[ -e ${pair%%:*} ]] && continue
    else command -v "${pair%%:*}" >/dev/null && continue; fi
    want+=("${pair#*:}")
  done
  ((${#want[@]})) || return 0
  [[ $(id -u) == 0 ]] || die "missing packages: ${want[*]} (run as root or scripts/install-deps.sh)"
  apt_update
  log "installing ${want[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >&2
}

# pkg_version PACKAGE → the candidate version apt would install.
pkg_version() {
  local v
  v=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }')
  if [[ -z $v || $v == "(none)" ]] && [[ $(id -u) == 0 ]]; then
    apt_update; v=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }')
  fi
  [[ -n $v && $v != "(none)" ]] || die "no candidate version for $1 (apt-get update?)"
  echo "$v"
}

# fetch_deb PACKAGE VERSION → path of the .deb in $cache_root/debs (downloaded once).
fetch_deb() {
  local pkg=$1 ver=$2 deb
  mkdir -p "$cache_root/debs"
  deb=$(ls "$cache_root/debs/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -1 || true)
  if [[ -z $deb ]]; then
    log "downloading $pkg=$ver"
    local apt_user=()  # as root, download as root: _apt cannot write into our cache dir
    [[ $(id -u) == 0 ]] && apt_user=(-o APT::Sandbox::User=root)
    (cd "$cache_root/debs" && apt-get download -q "${apt_user[@]}" "$pkg=$ver" >&2) \
      || die "cannot download $pkg=$ver (apt-get update?)"
    deb=$(ls "$cache_root/debs/${pkg}_${ver//:/%3a}_"*.deb | head -1)
  fi
  echo "$deb"
}

# compile_agent OUT: the guest agent, static so it runs on any Linux guest.
compile_agent() {
  gcc -static -Os -Wall -Wextra -o "$1" "$repo/guest-agent/agent.c"
  strip "$1"
}

# make_esp IMG SIZE_MIB SERIAL SRC_DIR: a FAT32 image holding SRC_DIR's tree (mtools, no mount).
# SERIAL (8 hex digits) is the volume id GRUB's `search --fs-uuid XXXX-XXXX` finds.
make_esp() {
  local img=$1 mib=$2 serial=$3 src=$4
  rm -f "$img"
  truncate -s "${mib}M" "$img"
  mformat -i "$img" -F -v ESP -N "$serial" ::
  (cd "$src" && find . -mindepth 1 -type d | LC_ALL=C sort | while read -r d; do mmd -i "$img" "::${d#.}"; done)
  (cd "$src" && find . -type f | LC_ALL=C sort | while read -r f; do mcopy -i "$img" -o "$f" "::${f#.}"; done)
}

# put_image DISK PART_START_SECTOR IMG: copies a partition image into the disk image.
put_image() {
  dd if="$3" of="$1" bs=1M seek="$(($2 * 512))" oflag=seek_bytes conv=notrunc,sparse status=none
}

# install_bios_grub DISK BIOS_PART_START_SECTOR EARLY_CFG: GRUB i386-pc on an image file
# without grub-bios-setup (package grub-pc, whose maintainer scripts would set up the
# host's own boot): core.img (modules + EARLY_CFG embedded) goes into the BIOS boot
# partition, boot.img's code into the MBR (its partition table kept), and the two sector
# pointers grub-bios-setup would patch are written here:
#   boot.img  +0x5c  u64  first sector of core.img
#   boot.img  +0x66  2×NOP over the jump that trusts the BIOS's boot drive only for floppies
#   core.img  +0x1f4 u64  first sector of the rest of core.img (its first blocklist entry;
#                         length and segment are already set by grub-mkimage)
install_bios_grub() {
  local disk=$1 start=$2 cfg=$3 tmp
  tmp=$(mktemp -d)
  grub-mkimage -O i386-pc -o "$tmp/core.img" -c "$cfg" -p /EFI/debian \
    biosdisk part_gpt fat ext2 normal configfile search search_fs_uuid linux gzio test echo serial terminal
  local sectors=$(( ($(stat -c %s "$tmp/core.img") + 511) / 512 ))
  ((sectors <= 2048)) || die "core.img has $sectors sectors, more than the BIOS boot partition"
  le64() { local v=$1 i; for i in 0 1 2 3 4 5 6 7; do printf "\\x$(printf %02x $(( (v >> (8 * i)) & 255 )))"; done; }
  le64 $((start + 1)) | dd of="$tmp/core.img" bs=1 seek=$((0x1f4)) conv=notrunc status=none
  cp /usr/lib/grub/i386-pc/boot.img "$tmp/boot.img"
  le64 "$start" | dd of="$tmp/boot.img" bs=1 seek=$((0x5c)) conv=notrunc status=none
  printf '\x90\x90' | dd of="$tmp/boot.img" bs=1 seek=$((0x66)) conv=notrunc status=none
  dd if="$tmp/core.img" of="$disk" bs=512 seek="$start" conv=notrunc status=none
  dd if="$tmp/boot.img" of="$disk" bs=440 count=1 conv=notrunc status=none
  rm -rf "$tmp"
}

# to_vhdx RAW VHDX [BLOCK_SIZE]: a dynamic VHDX written by vmhost's own engine (no daemon
# needed); only non-zero data is stored.
to_vhdx() {
  rm -f "$2"
  "$repo/bin/vmhost" Convert-VHD -Path "$1" -DestinationPath "$2" -VHDType Dynamic ${3:+-BlockSizeBytes "$3"} >&2
}

# publish WORK_OUT OUT: atomic rename; a concurrent build that won the race keeps its result.
publish() {
  if ! mv -T "$1" "$2" 2>/dev/null; then
    [[ -f $2/manifest.json ]] || die "cannot create $2"
  fi
}
