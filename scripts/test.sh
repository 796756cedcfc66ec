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

# Debian packages some tests need, installed where missing and we can (root
# with apt-get); without them those tests skip and say why:
#   chromium           browser tests (node/browser_test.go, cmd/serendip/demo_test.go)
#   nftables iproute2  real NAT in network namespaces (e2e/), also needs root
#   curl               reading node APIs inside those namespaces
#   spin               model checking of the claim protocol (discovery/model)
want=()
if [ -z "${SERENDIP_CHROMIUM:-}" ] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
	want+=(chromium)
fi
command -v nft >/dev/null || want+=(nftables)
command -v ip >/dev/null || want+=(iproute2)
command -v curl >/dev/null || want+=(curl)
command -v spin >/dev/null || want+=(spin)
if [ ${#want[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "test.sh: installing ${want[*]}" >&2
		if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >/dev/null; }; then
			echo "test.sh: could not install ${want[*]}; the tests that need them will skip" >&2
		fi
	else
		echo "test.sh: missing ${want[*]} (installing needs root and apt-get); the tests that need them will skip" >&2
	fi
fi
# Screenshots of the browser tests go here.
export SERENDIP_ARTIFACTS="${SERENDIP_ARTIFACTS:-${TMPDIR:-/tmp}/serendip-artifacts}"

go test -count=1 -timeout 30m ./...
echo "test.sh: browser screenshots (if Chromium ran) are in $SERENDIP_ARTIFACTS"
