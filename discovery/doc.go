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
// A searching node announces itself on its presence shard (see Presence
// shards) and keeps a pool of peers announced as available. Each search has
// a pairing key, sent in every announcement of the search: its start time in
// milliseconds, then 20 random bits. The rules (the Config fields named time
// them):
//
//   - Newcomers claim the waiting. A search that starts (or whose claim
//     failed) while its pool holds candidates whose searches started in an
//     earlier millisecond claims one of them at once, without the settling
//     delay: those peers have paired already if they could, so they wait
//     for a newcomer, and the newcomer heard their presence long ago while
//     they have yet to hear the newcomer's. It claims the longest waiting,
//     or the next: the two partners of a call that just ended search again
//     in the same moment and may not pair with each other, so the offerer
//     takes the first and the answerer the second (a first search draws its
//     part from its key), and two waiting peers are both claimed at once.
//     Except that a claim which would have to dial its peer first gives way
//     to one that need not: if that peer's presence came while the node had
//     no connection to it (PresenceSeen.Connected) and another of the four
//     longest waiting is connected, the newcomer claims the first connected
//     one from its rank on (then from the first). A dial costs a loaded
//     machine more than the claim itself.
//     A search announces itself only when such a claim fails (or when there
//     is nobody older to claim): most of these claims succeed, and a search
//     matched before anyone heard of it needs no withdraw either, so
//     presence carries about one message per search instead of two. After
//     two refused claims (a matched peer's withdraw can take a second to
//     cross a loaded network, and every newcomer meanwhile claims it) a
//     search stops claiming waiting peers and waits to be claimed.
//   - Pairing. Otherwise, a short while after the search starts, after the
//     first peer appears, or after a claim fails, the node pairs: it orders
//     the searching peers of its pool and itself by key (then peer id) and
//     pairs neighbours, (0,1), (2,3), ... In a pair whose searches started
//     in the same millisecond the lower claims the higher at once; the
//     higher waits PairWait for that claim, then claims the partner itself.
//     In a pair whose searches started apart, the later (higher) claims, as
//     above, and the earlier waits PairWait for it. Peers that heard the
//     same presences compute the same pairs, so under full contention
//     (everyone pressing Start at once) a claim almost never meets a
//     claiming or matched peer: about one claim per match. Keys in start
//     order make a newcomer join the end of everyone's order, leaving the
//     pairs already formed as they are.
//   - Settling. The pairing runs a random delay in [ClaimJitter/2,
//     ClaimJitter) after its trigger; each new peer in the meantime pushes it
//     back by such a delay, up to 2·ClaimJitter, so that peers who started
//     together pair on the same, complete view. About half a round trip is
//     right (DefaultConfig assumes about 150ms).
//   - The odd one out (the highest of an odd count) claims nobody: it is
//     Lonely until its pool changes, when it pairs again (a newcomer pairs
//     with it). A node whose pool is empty is Lonely too. Lonely, it waits
//     calmly: its only timer is the next announcement. When a new peer
//     appears, a node that was lonely announces itself again, so that the
//     newcomer (which may have joined the topic after our last
//     announcement) knows it too.
//   - Recent partners and blocked peers. The order counts every searching
//     peer of the pool, recent partners too, so that it stays the same for
//     everyone; a recent partner is never claimed, and its claims are
//     refused RefuseBusy: a user never meets one of their last
//     Config.RecentPartners partners again. Two former partners who are
//     neighbours in the order are orphans: the lower claims the odd one out
//     if there is one (and it did not start later: then it claims us);
//     otherwise both wait PairWait for another orphan's
//     claim, then claim a candidate at random. Blocked peers (and peers that
//     refused us as blocked) never enter the pool.
//   - Interests. For InterestWait after its search starts, a node with
//     interests orders, and claims, only peers that share one; then anyone.
//     An inbound claim is accepted whatever the interests.
//   - One claim outstanding at most. An inbound claim that meets our own
//     outstanding claim is ordered by Claim.Less (ticket, then id): if it is
//     older (smaller) it waits, at most one at a time and at most
//     HoldTimeout, and is accepted if our claim fails or refused RefuseBusy
//     if ours succeeds; if it is younger it is refused at once (wait-die, so
//     no wait cycle can form).
//   - Crossing (two nodes claim each other): the smaller claim wins on both
//     sides. The loser of the crossing accepts the winner's claim; the winner
//     answers the loser's claim with RefuseCrossing, and the loser, if it
//     hears that first, claims nobody for ClaimTimeout while the winning claim
//     arrives, staying free to accept it.
//   - A claim unanswered ClaimTimeout after it was sent has failed. A node
//     that must connect to its target first may take ConnectTimeout more
//     to send it (it reports ClaimSent when it has): on a loaded machine a
//     connection can take longer than the answer, and a claim given up
//     while the target accepts it wastes both searches. So an Accept that
//     arrives after we gave up is still taken if we are searching (no
//     claim of ours outstanding, not matched) and have not blocked the
//     target since: the target is matched with
//     us, and we become the offerer of that match. Otherwise it is called
//     off (EndCall with ReasonAbandoned). A failed or refused
//     target leaves the pool until its next presence. RefuseBlocked removes
//     it for the matcher's life.
//   - A match whose call has not started after SetupTimeout is ended and the
//     search resumes. Partners whose call started, or whom the user left with
//     Next, join the recent list.
//   - An event that makes no sense in the current state (a reply to a claim
//     no longer held, CallStarted for another match, Start while matched) is
//     dropped: no actions, no change. No event panics in any state.
//
// Status is O(1) (the pool counts its recent partners as they come and go;
// expired entries are pruned lazily, when the earliest expiry passes), so a
// node may ask for it after every Step.
//
// # Round trips
//
// The claim protocol's timers are set for a round trip the Config assumes
// (a fraction of ClaimTimeout, about one ClaimJitter). Where replies take
// longer (a slow link; a machine so loaded that every message waits), a
// claim that times out while its target accepts wastes both searches, and
// a PairWait shorter than a round trip makes both of a pair claim. So the
// matcher measures its claims' round trips (send to reply, any verdict,
// late replies to claims given up included) and keeps the quarter-quantile
// of the latest eight, once it has four: a held reply is late by up to
// HoldTimeout, and this estimate moves only when nearly every reply is
// slow. From it, a claim waits max(ClaimTimeout, HoldTimeout + 2 round
// trips), at most 4·ClaimTimeout (MaxClaimWait); the settling delay is at
// least half a round trip and PairWait at least that and a round trip.
// HoldTimeout stays: a hold that grew with the round trips would lengthen
// the replies it delays. Where round trips are as the Config assumes,
// every timer keeps its configured value. Status.RoundTrip is the
// estimate, Status.ClaimDeadline the outstanding claim's deadline.
//
// # Presence message
//
// The payload of one GossipSub message on a presence shard topic (see
// ShardTopic), at most MaxPresenceSize (4096) bytes. The sender is the
// message's signed From. All integers are big-endian.
//
//	offset  size  field
//	0       1     version = 2
//	1       1     flags: bit 0 = searching; other bits must be 0
//	2       1     level: the sender's shard level, 0..MaxShardLevel (30)
//	3       8     seq, uint64, strictly increasing per sender
//	11      8     expires, int64 unix milliseconds
//	19      8     key, uint64: the pairing key of the sender's search
//	27      1     n = number of interests, 0..16
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
// Version 1 (without level and key) is refused.
//
// # Presence shards
//
// With one topic every node would hear every announcement, and a node's
// presence traffic would grow with the network. A Sharder keeps it bounded:
//
//   - Position. Time is cut into epochs of ShardConfig.Epoch, each node's
//     offset by a phase drawn from its id (so that the network rotates a
//     little at a time, never all at once). In each epoch a node's position
//     is the first 64 bits of SHA-256("serendip/position", id, epoch): a
//     uniform, fresh draw per epoch.
//   - Shards. At level L a node's home shard is the first L bits of its
//     position; its topic is ShardTopic(network, shard): the root (level 0)
//     is PresenceTopic(network) itself, a deeper shard adds "/L.index". A
//     node joins its home topic and announces there. Every pair of nodes
//     shares a shard with the same chance 2^-L in every epoch, and epochs
//     draw again, so over time everyone meets everyone with equal chance.
//   - Level. A node estimates how many presence messages its shard carries
//     per AnnounceInterval (its window is ShardConfig.Window) and keeps it
//     between Target/2 and 2·Target: over 2·Target it goes deeper (each
//     shard splits in two), under Target/2 shallower. Levels move only at
//     checks that fall on the same wall-clock instants for every node (every
//     Window/4), and a node follows the level most of its shard's messages
//     come from, so that nodes agree. The traffic a node hears is thus about
//     Target messages per AnnounceInterval whatever the size of the network;
//     only searching nodes announce, so the level follows the number of
//     searches, not of nodes.
//   - Samples. Each announcement also goes to each ancestor k levels up with
//     probability 2^-k (under one extra message on average), so every
//     ancestor, the root too, carries about as much as a shard: a uniform
//     sample of the searches below it. A message from a deeper sender counts
//     2^(its level - ours) in the estimate (at most 8). A node that does not
//     know its level (a first start) starts at the root and, before it
//     publishes anything, listens: in a big network the samples tell it the
//     level, and it goes there at once (four messages, most from one
//     level). It publishes after a second if it heard nothing or only
//     messages from its own level (a small network), and listens up to 3s
//     if what it heard came from other levels but was too little to tell.
//   - Lonely nodes. A searching node that stays Lonely for LonelyWait also
//     joins (and announces on) the parent of its home, then 2, 4, ... levels
//     up, down to the root: two lonely nodes in different shards meet where
//     their ancestors do. A lone node in the whole network ends on the root,
//     waiting calmly. From its first climb it also announces on the sibling
//     of its home (the parent's other half) without joining it: newcomers
//     claim the longest waiting, and the sibling's newcomers, who never
//     look at the parent, now claim it too, so a waiting node waits for the
//     next newcomer of two shards instead of one (one more message per
//     announcement of a lonely search).
//   - Changes. When its home changes (a new epoch, a level merged), a node
//     stays joined to the old one for Linger (a presence TTL) and announces
//     on both, so that the peers that knew it there keep a consistent pool.
//     Matches are not disturbed: claims travel over direct streams, and the
//     pool keeps the peers it knew until their presence expires. A withdraw
//     goes to every shard its search announced to.
//
// With DefaultShardConfig (Target 16, AnnounceInterval 5s) a node hears
// about 3 presence messages a second from its shard (a few hundred bytes
// each), in a network of any size; a node in a call longer than
// PresenceTTL leaves its shard topics until it searches again (the node
// package does that; the sharder keeps its level meanwhile). Relays join
// the root (PresenceTopic) as before; it carries the whole of a small
// network, and samples of a big one.
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
