#!/bin/sh
# Runs a command (a bench) in a fresh network namespace whose loopback is shaped to RATE Mbit/s
# with tc's token bucket (tbf), so two daemons on this machine move VMs over a link with a real
# rate instead of memory-speed loopback — where Compression can win, as on a real migration
# network. Everything on that loopback is shaped (API calls and the ping tunnel too: small next
# to the stream). Nothing outside the namespace is touched; it is removed when the command ends.
#   sudo bench/shaped-loopback.sh 1000 env MEMS=256 LOADS=idle,dirty node --import tsx bench/live-migration.ts
# Needs root, ip(8) and tc(8) (iproute2) and the sch_tbf qdisc.
set -eu
rate=$1
shift
ns="vmhost-bench-$$"
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT INT TERM
ip netns exec "$ns" ip link set lo up
# The bucket holds 10 ms at the rate (at least 1 MiB): smaller, and the timer's granularity caps it below the rate.
burst=$((rate * 1000000 / 8 / 100))
[ "$burst" -ge 1048576 ] || burst=1048576
ip netns exec "$ns" tc qdisc add dev lo root tbf rate "${rate}mbit" burst "$burst" latency 50ms
ip netns exec "$ns" env LINK_MBIT="$rate" "$@"
