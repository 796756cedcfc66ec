package main

import (
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
)

// nodeHostOptions: TCP and QUIC with Noise/TLS (the defaults), the relay
// client, AutoNAT, hole punching (DCUtR), and AutoRelay with the bootstrap
// peers as static relays, so a node behind NAT is reachable for claims and
// signalling through a relay circuit and upgrades to a direct connection
// when it can. The resource manager keeps its default limits.
func nodeHostOptions(key crypto.PrivKey, listen []string, relays []peer.AddrInfo) []libp2p.Option {
	return []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(listen...),
		libp2p.EnableRelay(),
		libp2p.EnableHolePunching(),
		libp2p.EnableAutoNATv2(),
		libp2p.EnableAutoRelayWithStaticRelays(relays, autorelay.WithBootDelay(0)),
	}
}

// relayHostOptions: a public host that answers AutoNAT dial-backs for the
// nodes (so they learn whether they are behind NAT).
func relayHostOptions(key crypto.PrivKey, listen []string) []libp2p.Option {
	return []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(listen...),
		libp2p.ForceReachabilityPublic(),
		libp2p.EnableNATService(),
		libp2p.EnableAutoNATv2(),
	}
}
