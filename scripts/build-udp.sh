#!/usr/bin/env bash
# Builds the switch uplink's UDP batch addon (native/vmhost-udp.c: recvmmsg/sendmmsg, UDP
# GSO/GRO) with scripts/build-addon.sh; the last stdout line is its path. Called by
# scripts/build.sh, which treats a failure as "no addon": uplinks then use node:dgram, one
# call per datagram (slower, not wrong; src/switch/udp-batch.ts says so once on stderr).
exec "$(dirname "${BASH_SOURCE[0]}")/build-addon.sh" vmhost-udp
