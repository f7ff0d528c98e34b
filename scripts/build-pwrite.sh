#!/usr/bin/env bash
# Builds the block server's writer-thread addon (native/vmhost-pwrite.c: small pwrites on a
# fixed set of threads, completions handed back in batches) with scripts/build-addon.sh; the
# last stdout line is its path. Called by scripts/build.sh, which treats a failure as "no
# addon": small writes then run synchronously on the event loop (src/storage/write-pool.ts
# says so once on stderr).
exec "$(dirname "${BASH_SOURCE[0]}")/build-addon.sh" vmhost-pwrite
