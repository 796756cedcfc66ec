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

# The browser tests (node/browser_test.go, cmd/serendip/demo_test.go) drive
# Debian's chromium with a fake camera. Install it where it is missing and we
# can (root with apt-get); otherwise those tests skip and say why.
if [ -z "${SERENDIP_CHROMIUM:-}" ] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "test.sh: installing chromium for the browser tests" >&2
		if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
			echo "test.sh: could not install chromium; the browser tests will skip" >&2
		fi
	else
		echo "test.sh: chromium is not installed (needs root and apt-get to install it); the browser tests will skip" >&2
	fi
fi
# Screenshots of the browser tests go here.
export SERENDIP_ARTIFACTS="${SERENDIP_ARTIFACTS:-${TMPDIR:-/tmp}/serendip-artifacts}"

go test -count=1 -timeout 30m ./...
echo "test.sh: browser screenshots (if Chromium ran) are in $SERENDIP_ARTIFACTS"
