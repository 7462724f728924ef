#!/usr/bin/env bash
# The one test command: formatting, vet, staticcheck, every module's tests
# with the race detector, a standalone build of each module (GOWORK=off),
# and a short run of every fuzz target.
#
# Environment:
#   LANCE_FUZZTIME   how long each fuzz target runs (default 3s; 0 skips fuzzing)
#   LANCE_SKIP_LINT  set to 1 to skip staticcheck (it is fetched through the
#                    Go module proxy on first use)
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${LANCE_FUZZTIME:-3s}
staticcheck_version=v0.7.0
failed=()

step() { printf '\n=== %s\n' "$*"; }

if ! command -v go >/dev/null; then
	echo "scripts/test.sh: Go is not installed (see README.md)" >&2
	exit 2
fi

mods=$(go list -m -f '{{.Dir}}')
pkgs=$(go list -m -f '{{.Path}}/...')

step "gofmt"
unformatted=$(gofmt -l $mods)
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"
	failed+=(gofmt)
fi

step "go vet"
go vet $pkgs || failed+=(vet)

if [ "${LANCE_SKIP_LINT:-0}" != 1 ]; then
	step "staticcheck $staticcheck_version"
	go run "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version" $pkgs || failed+=(staticcheck)
fi

step "go test -race"
testlog=$(mktemp)
trap 'rm -f "$testlog"' EXIT
go test -race -count=1 $pkgs 2>&1 | tee "$testlog" || failed+=(test)
passed=$(grep -c -E '^ok ' "$testlog" || true)
nfailed=$(grep -c -E '^(FAIL|---\s*FAIL)\s' "$testlog" || true)

step "standalone builds (GOWORK=off)"
for dir in $mods; do
	(cd "$dir" && GOWORK=off go build ./... && echo "ok   $(basename "$dir") builds alone") || failed+=("build-$(basename "$dir")")
done

if [ "$fuzztime" != 0 ]; then
	step "fuzz targets, $fuzztime each"
	scripts/fuzz.sh "$fuzztime" 2>&1 | tee "$testlog" || failed+=(fuzz)
	passed=$((passed + $(grep -c '^ok ' "$testlog" || true)))
	nfailed=$((nfailed + $(grep -c '^FAIL ' "$testlog" || true)))
fi

echo
# Packages and fuzz targets, counted as go test reports them.
echo "test.sh: $passed passed, $nfailed failed"
if [ ${#failed[@]} -gt 0 ]; then
	echo "scripts/test.sh: FAILED: ${failed[*]}"
	exit 1
fi
echo "scripts/test.sh: all steps passed"
