#!/usr/bin/env bash
# Long runs of the fault tests, with the full counts of RELIABILITY.md.
# CI runs the same tests with small counts (scripts/test.sh).
#
#   scripts/soak.sh [CYCLES]
#
# CYCLES (default 10000) is used for the power-cut loop and the torn-tail
# loop, per storage backend and write mode (buffered, O_DIRECT). Prints, per
# test, backend and mode, the cycles run,
# the acknowledged syncs and the violations (a violation fails the test).
set -euo pipefail
cd "$(dirname "$0")/.."

cycles=${1:-10000}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "lnc-io power cuts and torn tails: $cycles cycles per backend"
status=0
(cd lnc-io && go test -count=1 -timeout 0 -v \
	-run '^(TestPowerCut|TestPowerCutNegativeControl|TestTornTails)$' \
	./topiclog -powercut.cycles="$cycles" -torn.tails="$cycles") >"$log" 2>&1 || status=$?
grep -E 'power-cut cycles=|torn tails=|loss detected|^\s*--- (PASS|FAIL)|^(ok|FAIL)' "$log" || true
if [ "$status" -ne 0 ]; then
	echo "soak: FAILED (full output follows)"
	cat "$log"
fi
exit "$status"
