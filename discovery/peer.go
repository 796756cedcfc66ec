package discovery

// PeerID names a peer. The node passes the bytes of a libp2p peer.ID as a
// string (string(id)); this package only compares PeerIDs and never parses
// them, so it needs no libp2p import.
type PeerID string

// ClaimProtocol is the libp2p protocol id of the claim stream (see doc.go).
const ClaimProtocol = "/serendip/claim/1"

// PresenceTopic returns the GossipSub topic that carries presence messages on
// the named network ("main" for the real one; other names keep test networks
// apart): "serendip/<network>/presence/1".
func PresenceTopic(network string) string {
	return "serendip/" + network + "/presence/1"
}
