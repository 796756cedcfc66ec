#!/usr/bin/env bash
# Builds (up) or removes (down) a small internet in network namespaces:
#
#   <p>inet     the "internet": bridge 100.64.0.1/24 (shared address space), where the
#               relay runs; public nodes get more addresses on it
#   <p>ra, <p>rb  NAT routers: WAN 100.64.0.2 / .3, LAN 192.0.2.1/26 and
#               192.0.2.65/26 (TEST-NET-1), nftables masquerade
#   <p>ha, <p>hb  hosts behind them: 192.0.2.2 and 192.0.2.66
#
#   natlab.sh up PREFIX NAT_A NAT_B   NAT_x: cone (masquerade, ports kept:
#                                      endpoint-independent mapping) or
#                                      symmetric (masquerade fully-random)
#   natlab.sh down PREFIX
#
# These addresses exist only inside the namespaces, which have no route out.
# The "internet" uses 100.64.0.0/24 rather than a documentation range
# because libp2p drops unroutable (documentation) addresses from relay
# circuits; it treats 100.64/10 as private, as on a carrier-grade NAT.
set -euo pipefail

cmd=${1:?up or down}
p=${2:?prefix}

down() {
	for ns in inet ra rb ha hb; do
		ip netns del "${p}${ns}" 2>/dev/null || true
	done
}

nat_rule() {
	case "$1" in
	cone) echo "masquerade" ;;
	symmetric) echo "masquerade fully-random" ;;
	*) echo "natlab: unknown NAT kind $1 (cone or symmetric)" >&2; exit 2 ;;
	esac
}

site() { # site NAME WAN_IP LAN_NET_BASE NAT
	local x=$1 wan=$2 base=$3 rule
	rule=$(nat_rule "$4")
	local r="${p}r${x}" h="${p}h${x}"
	ip netns add "$r"
	ip netns add "$h"
	ip -n "$r" link set lo up
	ip -n "$h" link set lo up
	# WAN: router <-> internet bridge
	ip link add "${p}w${x}" type veth peer name wan netns "$r"
	ip link set "${p}w${x}" netns "${p}inet"
	ip -n "${p}inet" link set "${p}w${x}" master br0 up
	ip -n "$r" addr add "$wan/24" dev wan
	ip -n "$r" link set wan up
	# LAN: router <-> host
	ip -n "$r" link add lan type veth peer name eth0 netns "$h"
	ip -n "$r" addr add "192.0.2.$((base + 1))/26" dev lan
	ip -n "$r" link set lan up
	ip -n "$h" addr add "192.0.2.$((base + 2))/26" dev eth0
	ip -n "$h" link set eth0 up
	ip -n "$h" route add default via "192.0.2.$((base + 1))"
	ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
	ip netns exec "$r" nft -f - <<NFT
table ip nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" $rule
	}
}
table ip filter {
	# Unsolicited packets from the internet are dropped before conntrack
	# confirms an entry for them, as a home router does; otherwise such an
	# entry could take the port a later outgoing mapping wants, and a cone
	# NAT would behave like a symmetric one.
	chain incoming {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iifname { "lo", "lan" } accept
	}
	chain forwarding {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "lan" oifname "wan" accept
	}
}
NFT
}

case "$cmd" in
up)
	a=${3:?NAT kind of site a} b=${4:?NAT kind of site b}
	down
	ip netns add "${p}inet"
	ip -n "${p}inet" link set lo up
	ip -n "${p}inet" link add br0 type bridge
	ip -n "${p}inet" addr add 100.64.0.1/24 dev br0
	ip -n "${p}inet" link set br0 up
	site a 100.64.0.2 0 "$a"
	site b 100.64.0.3 64 "$b"
	;;
down) down ;;
*) echo "usage: natlab.sh up PREFIX cone|symmetric cone|symmetric | down PREFIX" >&2; exit 2 ;;
esac
