// Package relay is the service volunteers run on public hosts: a bootstrap
// peer for the network, a Kademlia DHT server (where nodes meet through the
// rendezvous namespace), a circuit relay v2 service (so nodes behind NAT can
// be reached for claims and signalling), and a GossipSub router that joins the
// presence topic and forwards only presence that passes the validator.
// The DHT answers a lookup with at most maxProvidersPerLookup provider
// records, drawn at random (providers.go): every node advertises the
// network's rendezvous, and a relay's work per lookup must not grow with
// the network.
//
// The relay never takes part in matching or calls: it sees signed presence
// announcements, as every node does, and nothing else of the matching.
package relay
