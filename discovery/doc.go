// Package discovery finds a stranger to talk to: the presence messages that
// say who is available, the claim protocol that pairs two nodes, and the
// Matcher, a pure state machine that decides what to do.
//
// The package imports no libp2p, no Pion and no other serendip package. Peers
// are PeerIDs (the bytes of a libp2p peer.ID as a string). The node runs the
// Matcher on one goroutine: it feeds events (presence seen, claim received,
// timer ticks, user actions) to Matcher.Step with the current time and carries
// out the actions that come back (publish presence, send a claim or reply,
// start or end a call). Tests run many matchers over a deterministic
// in-memory network (package discovery/simnet).
//
// # Matching
//
// A searching node announces itself on the presence topic and keeps a pool of
// peers announced as available. After a random jitter it claims one peer,
// chosen uniformly among the eligible ones (not itself, not blocked, not one
// of its last Config.RecentPartners partners, not one that refused it since
// its last presence), over a direct stream. A node that had nobody to claim
// waits one jitter longer, because the peer that just appeared has probably
// just started searching and will claim someone itself. A match exists when
// the target accepts; the claimer is the offerer of the call. The rules (the
// Config fields named time them):
//
//   - One claim outstanding at most. An inbound claim that meets our own
//     outstanding claim is ordered by Claim.Less (ticket, then id): if it is
//     older (smaller) it waits, at most one at a time and at most HoldTimeout,
//     and is accepted if our claim fails or refused RefuseBusy if ours
//     succeeds; if it is younger it is refused at once (wait-die, so no wait
//     cycle can form).
//   - Crossing (two nodes claim each other): the smaller claim wins on both
//     sides. The loser of the crossing accepts the winner's claim; the winner
//     answers the loser's claim with RefuseCrossing, and the loser, if it
//     hears that first, claims nobody for ClaimTimeout while the winning claim
//     arrives, staying free to accept it.
//   - A claim unanswered after ClaimTimeout has failed. A failed or refused
//     target leaves the pool until its next presence. RefuseBlocked removes
//     it for the matcher's life.
//   - A match whose call has not started after SetupTimeout is ended and the
//     search resumes. Partners whose call started, or whom the user left with
//     Next, join the recent list. A recent partner is never claimed, even
//     when it is the only peer around. Its own claims are accepted like any
//     other: they come only from a peer whose call never started (or whose
//     RecentPartners is shorter), and refusing them would leave both nodes
//     searching for each other forever.
//   - A node with interests claims only peers that share one for
//     InterestWait after its search starts; then anyone. An inbound claim is
//     accepted whatever the interests.
//   - An event that makes no sense in the current state (a reply to a claim
//     no longer held, CallStarted for another match, Start while matched) is
//     dropped: no actions, no change. No event panics in any state.
//
// # Presence message
//
// The payload of one GossipSub message on PresenceTopic(network), at most
// MaxPresenceSize (4096) bytes. The sender is the message's signed From. All
// integers are big-endian.
//
//	offset  size  field
//	0       1     version = 1
//	1       1     flags: bit 0 = searching; other bits must be 0
//	2       8     seq, uint64, strictly increasing per sender
//	10      8     expires, int64 unix milliseconds
//	18      1     n = number of interests, 0..16
//	        n ×   1-byte length (1..32) + that many bytes of lower-case,
//	              printable UTF-8 without white space; no duplicates
//	        1     m = number of addresses, 0..16
//	        m ×   2-byte length (1..256) + that many bytes (a binary multiaddr,
//	              not interpreted here)
//
// Nothing may follow. A receiver accepts a message only if it parses, if
// Presence.Check passes (not expired, expiring at most the sender's TTL plus
// skew from now) and if SeqTracker.Accept passes (seq newer than the last one
// from that sender). Searching=false is a withdraw: the sender is matched or
// stopped. A sender should start seq from its wall clock (for example
// uint64(time.Now().UnixNano())) so that a restarted node is not refused.
//
// # Claim protocol
//
// Protocol id ClaimProtocol ("/serendip/claim/1"), one stream per claim. The
// claimer writes one Claim frame; the target writes one Reply frame, possibly
// after a wait of up to HoldTimeout, and both close. Every frame is a 2-byte
// big-endian payload length (1..65535) and the payload; readers refuse a
// length over MaxClaimFrame (64) before reading it.
//
//	Claim, 26 bytes:
//	0   1   version = 1
//	1   1   kind = 1
//	2   16  match id (random)
//	18  8   ticket, uint64 (random)
//
//	Reply, 19 bytes:
//	0   1   version = 1
//	1   1   kind = 2
//	2   16  match id of the claim answered
//	18  1   verdict: 1 accept, 2 busy, 3 crossing, 4 blocked,
//	        5 not searching, 6 timeout
//
// A reply with an id other than the claim's is malformed (ReadReply checks).
// On Accept the claimer is the offerer of the call, which is bound to the
// match id.
package discovery
