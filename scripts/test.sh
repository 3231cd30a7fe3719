#!/usr/bin/env bash
# Runs every test (ava, real processes and real FUSE mounts) and ends with one summary line:
# "tests: N passed, N failed". Extra arguments go to ava (e.g. a test file).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh || { echo "tests: 0 passed, 1 failed"; exit 1; }
log=$(mktemp /tmp/gfs-ava.XXXXXX)
npx ava --tap "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
pass=$(grep -cE '^ok [0-9]+' "$log" || true)
fail=$(grep -E '^not ok [0-9]+' "$log" | grep -vc '# TODO' || true)
rm -f "$log"
if [ "$status" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
echo "tests: ${pass} passed, ${fail} failed"
[ "$status" -eq 0 ] && [ "$fail" -eq 0 ]
