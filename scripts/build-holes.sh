#!/usr/bin/env bash
# Builds the hole-mapping addon (native/vmhost-holes.c: lseek SEEK_DATA/SEEK_HOLE, see
# ARCHITECTURE.md) with scripts/build-addon.sh; the last stdout line is its path. Called by
# scripts/build.sh, which treats a failure as "no addon": the engines then fall back to
# treating every byte as data (slower, not wrong).
exec "$(dirname "${BASH_SOURCE[0]}")/build-addon.sh" vmhost-holes
