# The dynamic memory test's guest program (busybox sh): holds MB megabytes in a tmpfs, which
# the guest cannot reclaim (no swap), in 8 MB steps, each only once MemAvailable shows room
# for it and a margin: it asks for memory the way a growing application does, at the pace the
# host plugs it, so no step drives the guest into its OOM killer. `free` lets it all go.
# Usage: sh memory-hog.sh hold MB | sh memory-hog.sh free
dir=/run/memory-hog
case "$1" in
  hold)
    mkdir -p "$dir"
    grep -q " $dir " /proc/mounts || mount -t tmpfs -o size=2g tmpfs "$dir"
    rm -f "$dir/done"
    n=0
    while [ "$n" -lt "$2" ]; do
      avail=$(sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo)
      if [ "$avail" -gt 16384 ]; then
        dd if=/dev/zero of="$dir/block$n" bs=1M count=8 2>/dev/null || exit 1
        n=$((n + 8))
      else
        sleep 0.2
      fi
    done
    echo "$n" >"$dir/done" ;;
  free)
    rm -f "$dir"/block*
    umount "$dir" ;;
esac
