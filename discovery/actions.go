package discovery

import "time"

// Action is an output of Matcher.Step, for the node to carry out in order.
type Action interface{ isAction() }

// Announce: publish our presence now. Searching=false is the withdraw, sent
// once when a search ends. Interests are normalized; Expires is now plus
// PresenceTTL. Announce.Presence builds the message.
type Announce struct {
	Searching bool
	Interests []string
	Expires   time.Time
	Key       uint64 // our pairing key for the current search
}

// Presence builds the wire message for a with the node's next sequence number
// and its own multiaddrs. The node sets Level (its Sharder's) itself.
func (a Announce) Presence(seq uint64, addrs [][]byte) Presence {
	return Presence{Seq: seq, Expires: a.Expires.UnixMilli(), Searching: a.Searching, Key: a.Key, Interests: a.Interests, Addrs: addrs}
}

// SendClaim: open a claim stream to To, write Claim, read one Reply and report
// it (ReplyReceived) or the failure (ClaimFailed). The matcher times the claim
// out by itself after ClaimTimeout; the node's stream deadline may be a
// little longer.
type SendClaim struct {
	To    PeerID
	Claim Claim
}

// SendReply: answer the inbound claim stream from To whose claim has
// Reply.ID, then close it. It may come long after the ClaimReceived (a
// waiting claim), or never if the stream died (PeerGone).
type SendReply struct {
	To    PeerID
	Reply Reply
}

// Matched: start the call for match ID with Peer. The offerer (the claimer
// whose claim was accepted) sends the SDP offer; the other side answers.
type Matched struct {
	Peer    PeerID
	ID      MatchID
	Offerer bool
}

// EndCall: hang up the call for match ID if there is one, and send Peer a bye
// for ID in any case. With ReasonAbandoned it names a match the node never
// started: a peer accepted a claim we had already given up, and the bye tells
// it to stop waiting (its node reports CallEnded).
type EndCall struct {
	Peer   PeerID
	ID     MatchID
	Reason string
}

// EndCall reasons.
const (
	ReasonNext         = "next"
	ReasonStop         = "stop"
	ReasonBlocked      = "blocked"
	ReasonSetupTimeout = "setup timeout"
	ReasonAbandoned    = "claim abandoned"
)

// StateChanged reports a change of State, for logs and the UI.
type StateChanged struct{ From, To State }

func (Announce) isAction()     {}
func (SendClaim) isAction()    {}
func (SendReply) isAction()    {}
func (Matched) isAction()      {}
func (EndCall) isAction()      {}
func (StateChanged) isAction() {}
