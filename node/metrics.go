package node

import "sync/atomic"

// Metrics count a node's protocol messages since it started. Bytes on the
// wire, with every protocol's overhead, are the host's business (a libp2p
// bandwidth reporter); these count what the node itself sent and took in.
type Metrics struct {
	PresenceSent     uint64 `json:"presence_sent"`
	PresenceReceived uint64 `json:"presence_received"`
	// PresenceUnsent counts announcements not published on a shard topic
	// because no connected peer was on it.
	PresenceUnsent  uint64 `json:"presence_unsent"`
	ClaimsSent      uint64 `json:"claims_sent"`
	ClaimsReceived  uint64 `json:"claims_received"`
	SignalsSent     uint64 `json:"signals_sent"`
	SignalsReceived uint64 `json:"signals_received"`
	// SlowSteps counts steps of the node's loop that took over 100 ms: the
	// loop runs the matcher and the calls, and nothing else of the node
	// moves while a step runs.
	SlowSteps uint64 `json:"slow_steps"`
	// ClaimDials counts claims sent to a peer the node had no connection
	// to: the claim dials it first. The Connects count the peers a meet
	// connected to: at the network's rendezvous, on the topic of a shard
	// it joined, on its home shard's sibling (see shard.go). Each new
	// connection costs a handshake on both sides; these say which part of
	// the node asked for it.
	ClaimDials         uint64 `json:"claim_dials"`
	RendezvousConnects uint64 `json:"rendezvous_connects"`
	ShardConnects      uint64 `json:"shard_connects"`
	SiblingConnects    uint64 `json:"sibling_connects"`
}

type metrics struct {
	presenceSent, presenceReceived atomic.Uint64
	presenceUnsent                 atomic.Uint64
	claimsSent, claimsReceived     atomic.Uint64
	signalsSent, signalsReceived   atomic.Uint64
	slowSteps                      atomic.Uint64
	claimDials                     atomic.Uint64
	// connects by meet: rendezvous, shard, sibling
	rendezvousConnects, shardConnects, siblingConnects atomic.Uint64
}

// Metrics returns the node's message counters.
func (n *Node) Metrics() Metrics {
	m := &n.metrics
	return Metrics{
		PresenceSent:     m.presenceSent.Load(),
		PresenceReceived: m.presenceReceived.Load(),
		PresenceUnsent:   m.presenceUnsent.Load(),
		ClaimsSent:       m.claimsSent.Load(),
		ClaimsReceived:   m.claimsReceived.Load(),
		SignalsSent:      m.signalsSent.Load(),
		SignalsReceived:  m.signalsReceived.Load(),
		SlowSteps:        m.slowSteps.Load(),

		ClaimDials:         m.claimDials.Load(),
		RendezvousConnects: m.rendezvousConnects.Load(),
		ShardConnects:      m.shardConnects.Load(),
		SiblingConnects:    m.siblingConnects.Load(),
	}
}
