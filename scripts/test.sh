#!/usr/bin/env bash
# The test command (README, CI): checks formatting and vet, then runs every
# test. It installs what the tests need where it is missing and it can.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null; then
	echo "test.sh: Go is not installed (need Go 1.26 or later)" >&2
	exit 1
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "test.sh: gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
go test -count=1 -timeout 30m ./...
