// Package p2p runs the discovery protocols over libp2p: presence on a
// GossipSub topic and the claim protocol over direct streams. The matcher in
// the parent package stays pure; this package only moves its messages.
//
// Names derived from the network name N (flag --network, default "main"):
//
//	presence topics  serendip/N/presence/1   discovery.PresenceTopic, the root shard; one signed Presence per message
//	                 serendip/N/presence/1/L.I   discovery.ShardTopic, shard I of level L (see discovery, Presence shards)
//	rendezvous       serendip/N              Namespace; DHT provider records of nodes
//	claim protocol   /serendip/claim/1       discovery.ClaimProtocol; one stream per claim: Claim, then Reply
//
// Presence messages must be signed by their author (GossipSub StrictSign); the
// topic validator drops anything oversized, malformed, expired, from too far in
// the future, or replayed (sequence not above the last one seen from that
// author), with a debug log line. Each shard topic needs its own Validator
// (one message may travel on two shards: a sample). Relays register the same
// validator, so junk is not forwarded.
package p2p
