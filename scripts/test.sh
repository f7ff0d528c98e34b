#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds the test guest,
# typechecks, lints, then runs every test file (unit tests beside the code in src/,
# integration tests with real QEMU guests in test/) in one node:test run.
# VMHOST_LONG=1 turns on the long crash/fuzz runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
echo "test: test guest image at $(scripts/build-guest.sh | tail -n 1)"
scripts/build.sh
echo "test: typecheck"; npx tsc --noEmit -p .  # web/ is typechecked by scripts/build.sh
# --no-error-on-unmatched-pattern: scripts/ holds only shell scripts today, and ESLint fails
# on a folder whose files are all ignored.
echo "test: lint"; npx eslint --max-warnings 0 --no-error-on-unmatched-pattern src test bench scripts web/src
mapfile -t files < <(find src test -name '*.test.ts' | sort)
echo "test: ${#files[@]} test files"
# Two files at a time: the machine has 2 cores and QEMU guests run under TCG.
exec node --import tsx --test --test-concurrency=2 --test-timeout=600000 "${files[@]}"
