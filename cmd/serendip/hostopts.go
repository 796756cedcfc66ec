package main

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	ma "github.com/multiformats/go-multiaddr"
)

// nodeHostOptions: TCP and QUIC with Noise/TLS (the defaults), the relay
// client, AutoNAT, hole punching (DCUtR), and AutoRelay with the bootstrap
// peers as static relays, so a node behind NAT is reachable for claims and
// signalling through a relay circuit and upgrades to a direct connection
// when it can. The resource manager keeps its default limits.
//
// reachability overrides AutoNAT: "private" (a node that knows it is behind
// NAT: it reserves relay slots at once) or "public"; "auto" leaves it to
// AutoNAT, which probes only public addresses.
func nodeHostOptions(key crypto.PrivKey, listen []string, relays []peer.AddrInfo, reachability string) ([]libp2p.Option, error) {
	// A node needs few connections at once (its shard's mesh, its relays,
	// its partner) and claims dial the peers they need: trim to 32 past 64
	// rather than libp2p's 160 past 192 (see harness: idle connections cost
	// goroutines and keepalives).
	cm, err := connmgr.NewConnManager(32, 64, connmgr.WithGracePeriod(20*time.Second))
	if err != nil {
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.ConnectionManager(cm),
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(listen...),
		libp2p.EnableRelay(),
		libp2p.EnableHolePunching(),
		libp2p.EnableAutoNATv2(),
		libp2p.EnableAutoRelayWithStaticRelays(relays, autorelay.WithBootDelay(0)),
	}
	switch reachability {
	case "auto":
	case "private":
		opts = append(opts, libp2p.ForceReachabilityPrivate(), libp2p.AddrsFactory(withCircuits(relays)))
	case "public":
		opts = append(opts, libp2p.ForceReachabilityPublic())
	default:
		return nil, fmt.Errorf("node: --reachability %q: want auto, private or public", reachability)
	}
	return opts, nil
}

// relayHostOptions: a public host that answers AutoNAT dial-backs for the
// nodes (so they learn whether they are behind NAT).
// Its connection manager keeps thousands of nodes: the default (trim to 160
// past 192) would drop nodes that rely on it for presence and circuits.
func relayHostOptions(key crypto.PrivKey, listen []string) ([]libp2p.Option, error) {
	cm, err := connmgr.NewConnManager(4000, 5000)
	if err != nil {
		return nil, err
	}
	return []libp2p.Option{
		libp2p.ConnectionManager(cm),
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(listen...),
		libp2p.ForceReachabilityPublic(),
		libp2p.EnableNATService(),
		libp2p.EnableAutoNATv2(),
	}, nil
}

// withCircuits makes a node that knows it is behind NAT also advertise
// circuit addresses through each of its static relays. AutoRelay advertises
// them itself only for relays on public addresses; this covers relays on
// private ones (a LAN, a carrier-grade NAT, the namespace tests). A circuit
// works once AutoRelay holds the reservation, which it makes with any relay.
func withCircuits(relays []peer.AddrInfo) func([]ma.Multiaddr) []ma.Multiaddr {
	var circuits []ma.Multiaddr
	for _, r := range relays {
		suffix, err := ma.NewMultiaddr("/p2p/" + r.ID.String() + "/p2p-circuit")
		if err != nil {
			continue
		}
		for _, a := range r.Addrs {
			circuits = append(circuits, a.Encapsulate(suffix))
		}
	}
	return func(addrs []ma.Multiaddr) []ma.Multiaddr {
		for _, a := range addrs {
			if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
				return addrs // AutoRelay's own
			}
		}
		return append(addrs, circuits...)
	}
}
