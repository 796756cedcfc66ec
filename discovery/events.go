package discovery

import "time"

// Event is an input to Matcher.Step. Events are the value types below (not
// pointers); anything else is dropped.
type Event interface{ isEvent() }

// Tick tells the matcher that time has passed. Call Step(now, Tick{}) at
// Status().NextWake; a late or extra Tick is harmless.
type Tick struct{}

// Start begins searching (from Idle). Its interests are normalized with
// NormalizeInterests and kept in every state; while searching, new interests
// are announced at once.
type Start struct{ Interests []string }

// Stop ends any call (EndCall) and search, withdraws our presence and goes
// Idle.
type Stop struct{}

// Next ends the current call and searches again. While searching it changes
// nothing; from Idle it is Start with the last interests.
type Next struct{}

// Block adds Peer to the block list, kept for the matcher's life: never
// claimed, claims from it refused with RefuseBlocked, a match with it ended.
// The node persists the list and replays Block events after NewMatcher.
type Block struct{ Peer PeerID }

// PresenceSeen reports a presence message that passed the topic validator
// (Presence.Check and SeqTracker). Presence.Seen builds it.
type PresenceSeen struct {
	Peer      PeerID
	Expires   time.Time
	Searching bool
	Key       uint64 // the peer's pairing key (Presence.Key)
	Interests []string
	// Connected: the node had a connection to Peer when the presence
	// arrived, so a claim need not dial first. Among the peers that waited
	// longest, a newcomer claims one it is connected to (claimWaiting).
	Connected bool
}

// PeerGone reports that Peer is known to be unreachable (disconnected with no
// way back). It leaves the pool until its next presence, and fails a claim to
// it. A match with it is left to the call layer and SetupTimeout.
type PeerGone struct{ Peer PeerID }

// ClaimReceived reports a claim read from an inbound claim stream. The node
// keeps the stream open until the SendReply with the same ID (or its own
// deadline, somewhat over HoldTimeout).
type ClaimReceived struct {
	From  PeerID
	Claim Claim
}

// ReplyReceived reports the reply read from our outgoing claim stream.
type ReplyReceived struct {
	From  PeerID
	Reply Reply
}

// ClaimFailed reports that our claim stream to To failed (dial error, reset,
// deadline) before a reply.
type ClaimFailed struct {
	To PeerID
	ID MatchID
}

// ClaimSent reports that our claim to To is on its way: the node reached
// the target (connecting first if it had to) and wrote the claim. From
// then on the claim has ClaimTimeout for its reply (see
// Config.ConnectTimeout).
type ClaimSent struct {
	To PeerID
	ID MatchID
}

// CallStarted reports that the call for match ID is up (media connected).
type CallStarted struct{ ID MatchID }

// CallEnded reports that the call for match ID ended without our asking: the
// partner hung up (bye), it failed, or setup was given up. Rematch searches
// again at once; otherwise the matcher goes Idle. A node should pass
// Rematch=true when the call never started, so a user who pressed Start is
// not left idle by a failed setup.
type CallEnded struct {
	ID      MatchID
	Rematch bool
}

func (Tick) isEvent()          {}
func (Start) isEvent()         {}
func (Stop) isEvent()          {}
func (Next) isEvent()          {}
func (Block) isEvent()         {}
func (PresenceSeen) isEvent()  {}
func (PeerGone) isEvent()      {}
func (ClaimReceived) isEvent() {}
func (ReplyReceived) isEvent() {}
func (ClaimFailed) isEvent()   {}
func (ClaimSent) isEvent()     {}
func (CallStarted) isEvent()   {}
func (CallEnded) isEvent()     {}
