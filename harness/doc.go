// Package harness runs many real Serendip nodes and relays on one machine,
// drives them through a scenario and reports what happened: how fast
// strangers meet and see each other, how many calls worked, what the
// network costs per node, and whether an invariant broke.
//
// The nodes are the real thing: node.New on a libp2p host (TCP on
// 127.0.0.1, Noise, yamux, GossipSub, Kademlia), real Pion calls with ICE,
// DTLS, SCTP and, with MediaFiles, the VP8 and Opus test clips (by
// default a microphone in 60-ms Opus packets, a third of a browser's: see
// Config.AudioFile). They run
// either all in this process (each on its own host, with node.LocalConfig)
// or each in a child process (serendip node --local, driven through its
// JSON API).
//
// In process, every host is lighter than the node command's (TCP and Noise
// only, no relay transport or NAT services, no resource manager, no
// Prometheus) and every node is a DHT client, as a node behind NAT is on
// the internet; the relays are the DHT servers. The relays keep a
// connection to every node. Each node starts at the presence shard level
// a node of a network that size would have saved from an earlier run
// (startShardLevel), as the simulator's nodes do, instead of probing from
// the root. Child processes run the node and relay commands exactly as a
// person would (they probe).
//
// In process, the nodes share their Ed25519 signature checks (sigcache.go):
// a valid (key, data, signature) checked by one node is not checked again
// by the next. On the internet every node checks every presence message on
// its own CPU; here a thousand nodes would check each one on the same two
// cores (a fifth of a 1,000-node run's CPU). What every node decides is
// unchanged; the CPU figures of an in-process run leave those checks out,
// and the report says how many there were. The node hosts' connection
// managers keep fewer peers when this process may not open enough files
// for the default (nodeConnLimits; at 1,000 nodes and the 20,000 files of
// this machine, 4 past 9).
//
// # Scenarios
//
// See Scenario: steady, cold-start, next-storm, churn, lonely and idle.
// Config.Ramp spreads the launch over a while, as people arrive (cold
// start always launches everyone at once).
//
// # What is measured
//
//   - Time to match: node.CallRecord.SearchMillis, from the start of a
//     search to the match, for every search but a node's first (that one
//     includes joining the network and is reported as launch to first
//     call).
//   - Time to first frame: CallRecord.FirstFrameMillis, from the match to
//     the partner's first complete video frame (signalling, ICE, DTLS and
//     the first keyframe included).
//   - Calls: by match id over every node's records. Completed: media
//     connected on a side. Failed: never connected, by reason.
//   - Double match: a match id under which the sides disagree about who is
//     matched with whom (A says B, B says C), or that a third node claims;
//     from every node's state, sampled each Config.SampleInterval, and
//     every call record.
//   - Stuck: matched without a call for longer than the matcher's
//     SetupTimeout plus 5 s; searching for 15 s while more other nodes than
//     the matcher's RecentPartners (whom it may not claim) were searching
//     all that time; a bot idle for 15 s.
//   - Call with no media (MediaFiles): a connected call that had media for
//     at least a second, neither side killed, whose record shows no video
//     frame or no audio packet received.
//   - Fairness: see Fairness.
//   - Traffic: message counts from node.Metrics, bytes by protocol from a
//     libp2p bandwidth reporter shared by the node hosts (in process only),
//     media as RTP payload bytes received, connections the node hosts
//     dialled and accepted (in process only), and the connections the
//     nodes set out to make by why (claims to peers not yet connected,
//     meets at the rendezvous, on shards and on siblings: node.Metrics);
//     all per node per second of node lifetime.
//   - CPU and memory: in process, getrusage and /proc of this process (the
//     relays and the harness included) divided by the number of nodes;
//     with processes, each node process's rusage. The idle scenario
//     measures the memory of idle nodes after a garbage collection.
//   - Scheduling wait (in process only): how long this process's
//     goroutines waited runnable before they ran, from the Go runtime's
//     sampled histogram (/sched/latencies:seconds) over the run. Every
//     message a node handles passes between a few goroutines and waits
//     this long at each: when the cores are full it is what grows, and
//     time to match and setup with it.
//   - Host speed: how long one Ed25519 signature takes on one core and one
//     round trip over loopback TCP, just before the run
//     (Machine.SignMicros, Machine.LoopbackMicros), so that runs on
//     different hosts, or on one host on different days, can be compared.
//     Neither captures everything: on a day the same run took 40 % more
//     CPU, signatures were no slower.
//
// An invariant broken makes Run return ErrInvariant with the report, and
// the serendip harness command exit non-zero, so CI can run a short
// scenario as a test.
//
// MediaData runs calls with the data channel only, each node in a call
// sending a chat line a second where the node offers a way to (the report
// says how many were sent, or that none could be).
package harness
