#!/usr/bin/env bash
# Runs every fuzz target of the repository, one after the other.
#
#   scripts/fuzz.sh [FUZZTIME] [REGEXP]
#
# FUZZTIME is go test's -fuzztime: a duration (30s) or a count of
# executions (10000000x); default 3s. REGEXP selects targets by name.
# Prints one line per target, "ok" or "FAIL", with the executions reached;
# exits non-zero if any target failed. A failing input is saved by go test
# under the package's testdata/fuzz/, where it then runs as a regular test.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${1:-3s}
select=${2:-.}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

# Every func FuzzXxx(f *testing.F) of a tracked or new _test.go file.
targets=$(grep -H -o -E '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' \
	$(git ls-files --cached --others --exclude-standard '*_test.go') |
	sed -E 's/func (Fuzz[A-Za-z0-9_]+)\(.*/\1/' | sort -u)

for t in $targets; do
	file=${t%%:*}
	name=${t##*:}
	dir=$(dirname "$file")
	[[ $name =~ $select ]] || continue
	start=$SECONDS
	result=FAIL
	for attempt in 1 2; do
		if (cd "$dir" && go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime 1s . >"$log" 2>&1); then
			result=ok
			break
		fi
		# go test can fail a short run with "context deadline exceeded"
		# when its time ends while it is minimizing a new input; that is
		# the harness, not a finding. A real finding writes its input
		# under testdata/fuzz and fails again. Retry once in that case.
		if grep -q 'Failing input written' "$log" || ! grep -q 'context deadline exceeded' "$log"; then
			break
		fi
	done
	if [ "$result" = FAIL ]; then
		status=1
		cat "$log"
	fi
	execs=$(grep -o -E 'execs: [0-9]+' "$log" | tail -n 1 | tr -dc 0-9 || true)
	printf '%-4s %-24s %-38s execs=%s seconds=%d\n' "$result" "$dir" "$name" "${execs:-?}" $((SECONDS - start))
done
exit $status
