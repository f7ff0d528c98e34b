#!/usr/bin/env bash
# Builds the vmhost test guest (kernel + busybox initramfs with the vmhost agent) from
# Debian packages only, into a cache dir keyed by a hash of the recipe:
#   ${VMHOST_GUEST_CACHE:-<repo>/.cache/guest}/<hash>/{vmlinuz,initrd.img,manifest.json}
# The recipe is this script, everything in guest-agent/, the kernel package version and
# the busybox-static version. Rebuilds only when one of them changes. Progress goes to
# stderr; the last stdout line is the output dir.
#
# Env: VMHOST_GUEST_CACHE       cache root
#      VMHOST_GUEST_KERNEL_PKG  kernel package (default: what linux-image-cloud-amd64 depends on)
# Needs: apt-get, dpkg-deb, busybox-static, cpio, gzip, xz-utils, gcc, libc6-dev
# (installed here with apt-get when missing and running as root).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
agent_dir="$repo/guest-agent"
cache_root=${VMHOST_GUEST_CACHE:-$repo/.cache/guest}
log() { echo "build-guest: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Modules wanted in the guest; their dependencies are added from each module's
# depends= field, so the load order is always complete. Optional ones may be absent.
wanted=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
        virtio_blk scsi_mod sd_mod virtio_scsi failover net_failover virtio_net
        virtio_balloon virtio_console)
optional=(virtio_mem)

# --- host tools --------------------------------------------------------------------
need_pkgs=()
dpkg -s busybox-static >/dev/null 2>&1 || need_pkgs+=(busybox-static)
command -v cpio >/dev/null || need_pkgs+=(cpio)
command -v xz >/dev/null || need_pkgs+=(xz-utils)
command -v gzip >/dev/null || need_pkgs+=(gzip)
command -v gcc >/dev/null || need_pkgs+=(gcc)
[[ -e /usr/lib/x86_64-linux-gnu/libc.a ]] || need_pkgs+=(libc6-dev)
apt_updated=0
apt_update() { if [[ $apt_updated == 0 ]]; then log "apt-get update"; apt-get update -qq >&2; apt_updated=1; fi; }
if ((${#need_pkgs[@]})); then
  [[ $(id -u) == 0 ]] || die "missing packages: ${need_pkgs[*]} (run as root or apt-get install them)"
  apt_update
  log "installing ${need_pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
fi

# --- recipe hash -------------------------------------------------------------------
# One apt-cache call (~1 s): the cloud meta package pins its kernel package exactly.
kernel_pkg=${VMHOST_GUEST_KERNEL_PKG:-}
kernel_ver=
find_kernel() {
  apt-cache show --no-all-versions linux-image-cloud-amd64 2>/dev/null \
    | sed -n 's/^Depends: \(linux-image-[0-9][^ ,]*\) (= \([^)]*\)).*/\1 \2/p' | head -1
}
if [[ -z $kernel_pkg ]]; then
  found=$(find_kernel)
  if [[ -z $found && $(id -u) == 0 ]]; then apt_update; found=$(find_kernel); fi
  [[ -n $found ]] || die "cannot find the kernel behind linux-image-cloud-amd64 (apt-get update?)"
  read -r kernel_pkg kernel_ver <<<"$found"
else
  kernel_ver=$(apt-cache policy "$kernel_pkg" | awk '/Candidate:/ { print $2 }')
fi
[[ -n $kernel_ver && $kernel_ver != "(none)" ]] || die "no candidate version for $kernel_pkg"
busybox_ver=$(dpkg-query -W -f '${Version}' busybox-static)

hash=$( {
  cat "${BASH_SOURCE[0]}"
  (cd "$agent_dir" && find . -type f | LC_ALL=C sort | while read -r f; do echo "== $f"; cat "$f"; done)
  echo "kernel=$kernel_pkg=$kernel_ver busybox=$busybox_ver"
} | sha256sum | cut -c1-16)
out="$cache_root/$hash"
if [[ -f $out/manifest.json && -f $out/vmlinuz && -f $out/initrd.img ]]; then
  log "up to date: $out"
  echo "$out"
  exit 0
fi

# --- build -------------------------------------------------------------------------
# One build at a time per cache (parallel test processes); the winner's result is reused.
mkdir -p "$cache_root/debs"
exec 9>"$cache_root/.lock"
flock 9
if [[ -f $out/manifest.json ]]; then log "built meanwhile: $out"; echo "$out"; exit 0; fi
work=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

deb=$(ls "$cache_root/debs/${kernel_pkg}_${kernel_ver//:/%3a}_"*.deb 2>/dev/null | head -1 || true)
if [[ -z $deb ]]; then
  log "downloading $kernel_pkg=$kernel_ver"
  apt_user=()  # as root, download as root: _apt cannot write into our cache dir
  [[ $(id -u) == 0 ]] && apt_user=(-o APT::Sandbox::User=root)
  # Writes into the cwd; as root apt warns that _apt cannot, which is harmless.
  if ! (cd "$cache_root/debs" && apt-get download -q "${apt_user[@]}" "$kernel_pkg=$kernel_ver" >&2); then
    # Stale package lists name a version the mirror no longer has: update, start over.
    if [[ $(id -u) == 0 && -z ${VMHOST_GUEST_APT_RETRY:-} ]]; then
      apt_update
      rm -rf "$work"
      VMHOST_GUEST_APT_RETRY=1 exec bash "${BASH_SOURCE[0]}"
    fi
    die "cannot download $kernel_pkg=$kernel_ver (apt-get update?)"
  fi
  deb=$(ls "$cache_root/debs/${kernel_pkg}_"*"_"*.deb | head -1)
fi
log "unpacking $(basename "$deb")"
dpkg-deb -x "$deb" "$work/pkg"
vmlinuz=$(ls "$work"/pkg/boot/vmlinuz-* | head -1)
kver=${vmlinuz##*/vmlinuz-}
moddir="$work/pkg/lib/modules/$kver"
[[ -d $moddir ]] || die "no modules dir for $kver in $deb"

root="$work/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,root,lib/modules}

# Modules: find each file, decompress when needed, add dependencies first.
declare -A done_mod=()
order=()
mod_file() { find "$moddir/kernel" -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" -o -name "$1.ko.gz" | head -1; }
builtin() { grep -q "/$1.ko\$" "$moddir/modules.builtin" 2>/dev/null; }
add_mod() { # name required(1/0)
  local m=${1//-/_} f deps d
  [[ -n ${done_mod[$m]:-} ]] && return 0
  f=$(mod_file "$m")
  [[ -z $f ]] && f=$(mod_file "${m//_/-}")
  if [[ -z $f ]]; then
    done_mod[$m]=builtin
    builtin "$m" || builtin "${m//_/-}" && return 0
    [[ $2 == 1 ]] && die "module $m not found in $kernel_pkg"
    log "optional module $m not available, skipped"; return 0
  fi
  case $f in
    *.ko.xz)  xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
    *.ko.zst) zstd -qdc "$f" >"$root/lib/modules/$m.ko" ;;
    *.ko.gz)  gzip -dc "$f" >"$root/lib/modules/$m.ko" ;;
    *)        cp "$f" "$root/lib/modules/$m.ko" ;;
  esac
  done_mod[$m]=1
  deps=$(tr '\0' '\n' <"$root/lib/modules/$m.ko" | sed -n 's/^depends=//p' | head -1)
  for d in ${deps//,/ }; do add_mod "$d" 1; done
  order+=("$m")
}
for m in "${wanted[@]}"; do add_mod "$m" 1; done
for m in "${optional[@]}"; do add_mod "$m" 0; done
printf '%s\n' "${order[@]}" >"$root/etc/modules"
log "modules: ${order[*]}"

# busybox and its applet links (paths as busybox itself lists them).
cp /bin/busybox "$root/bin/busybox"
/bin/busybox --list-full | while read -r p; do
  [[ $p == bin/busybox ]] && continue
  mkdir -p "$root/$(dirname "$p")"
  ln -sf /bin/busybox "$root/$p"
done

log "compiling agent"
gcc -static -Os -Wall -Wextra -o "$root/sbin/vmhost-agent" "$agent_dir/agent.c"
strip "$root/sbin/vmhost-agent"
# The memory-dirtying load of the live-migration tests (guest-agent/memdirty.c).
gcc -static -Os -Wall -Wextra -o "$root/sbin/vmhost-memdirty" "$agent_dir/memdirty.c"
strip "$root/sbin/vmhost-memdirty"

install -m 755 "$agent_dir/init" "$root/init"
install -m 644 "$agent_dir/inittab" "$root/etc/inittab"
install -m 644 "$agent_dir/profile" "$root/etc/profile"
cat >"$root/etc/os-release" <<EOF
PRETTY_NAME="vmhost test guest (Debian kernel $kver)"
NAME="vmhost test guest"
ID=vmhost-guest
VERSION_ID=$hash
EOF
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"

log "packing initramfs"
mkdir -p "$work/out"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9n >"$work/out/initrd.img"
cp "$vmlinuz" "$work/out/vmlinuz"
modules_json=$(printf '"%s",' "${order[@]}")
cat >"$work/out/manifest.json" <<EOF
{
  "hash": "$hash",
  "kernelPackage": "$kernel_pkg",
  "kernelPackageVersion": "$kernel_ver",
  "kernelVersion": "$kver",
  "busyboxVersion": "$busybox_ver",
  "modules": [${modules_json%,}],
  "agentPort": "org.vmhost.agent.0",
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF

# Publish atomically; if a concurrent build won the race, keep its result.
mkdir -p "$cache_root"
if ! mv -T "$work/out" "$out" 2>/dev/null; then
  [[ -f $out/manifest.json ]] || die "cannot create $out"
fi
log "built $out ($(du -h "$out/initrd.img" | cut -f1) initrd)"
# Keep the three newest builds; older recipes are rebuilt if anyone still needs them.
ls -1dt "$cache_root"/*/manifest.json 2>/dev/null | tail -n +4 | while read -r m; do
  rm -rf "$(dirname "$m")"
done
echo "$out"
