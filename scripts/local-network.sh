#!/usr/bin/env bash
# Runs a small Serendip network on this machine: one relay and three bots
# that loop the test clips, call each other for a few seconds each and move
# on. It prints each bot's state every few seconds; Ctrl-C stops everything.
#
#   scripts/local-network.sh [--bots N] [--call-seconds S] [--duration SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."

bots=3 call=5 duration=0
while [ $# -gt 0 ]; do
	case "$1" in
	--bots) bots=$2; shift 2 ;;
	--call-seconds) call=$2; shift 2 ;;
	--duration) duration=$2; shift 2 ;;
	*) echo "usage: $0 [--bots N] [--call-seconds S] [--duration SECONDS]" >&2; exit 2 ;;
	esac
done

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "logs and recordings were in $work"
}
trap cleanup EXIT INT TERM

go build -o "$work/serendip" ./cmd/serendip
network="local-$$"

"$work/serendip" relay --network "$network" --listen /ip4/127.0.0.1/tcp/0 \
	--listen /ip4/127.0.0.1/udp/0/quic-v1 --data-dir "$work/relay" \
	--addr-file "$work/relay.addrs" >"$work/relay.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/relay.addrs" ] && break; sleep 0.1; done
[ -s "$work/relay.addrs" ] || { echo "relay did not start; see $work/relay.log" >&2; exit 1; }
relay=$(head -n 1 "$work/relay.addrs")
echo "relay: $relay"

for i in $(seq "$bots"); do
	port=$((7372 + i))
	"$work/serendip" node --local --network "$network" --bootstrap "$relay" \
		--http "127.0.0.1:$port" --data-dir "$work/bot$i" --record "$work/bot$i/calls" \
		--video testdata/clip.ivf --audio testdata/clip.ogg \
		--auto --call-seconds "$call" >"$work/bot$i.log" 2>&1 &
	pids+=($!)
	echo "bot $i: http://127.0.0.1:$port/api/state"
done

start=$(date +%s)
while :; do
	sleep 3
	for i in $(seq "$bots"); do
		port=$((7372 + i))
		st=$(curl -fsS "http://127.0.0.1:$port/api/state" 2>/dev/null || echo '{"state":"down"}')
		echo "bot $i: $st"
	done
	echo
	if [ "$duration" -gt 0 ] && [ $(($(date +%s) - start)) -ge "$duration" ]; then
		break
	fi
done
