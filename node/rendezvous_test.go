package node_test

import (
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"serendip/node"
)

// TestRendezvousConnectsIdleNodes: two idle nodes (which send no presence
// and no claims) that only know the relay find each other through the DHT
// rendezvous and connect directly. They are DHT clients, so the DHT's own
// routing cannot be what introduces them.
func TestRendezvousConnectsIdleNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("real libp2p hosts and DHT; skipped in -short")
	}
	nw := newNetwork(t)
	var hosts []peer.ID
	var nodes []*node.Node
	for range 2 {
		h := newHost(t)
		cfg := node.LocalConfig()
		cfg.Network = nw.name
		cfg.Bootstrap = []peer.AddrInfo{nw.relay}
		cfg.DHTMode = dht.ModeClient
		cfg.Logger = testLogger(t)
		n, err := node.New(h, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		hosts = append(hosts, h.ID())
		nodes = append(nodes, n)
	}
	waitFor(t, 20*time.Second, "the two nodes to connect through the rendezvous", func() bool {
		return nodes[0].Host().Network().Connectedness(hosts[1]) == network.Connected
	})
	for _, n := range nodes {
		if st := state(t, n); st.State != "idle" {
			t.Errorf("node %s is %s; want idle (nothing started it)", st.PeerID, st.State)
		}
	}
}
