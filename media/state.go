package media

import "fmt"

// Role is a session's side of the offer/answer exchange. The match fixes it:
// exactly one side of a call is the Offerer.
type Role int

const (
	// Offerer creates the chat data channel and the offer.
	Offerer Role = iota + 1
	// Answerer waits for the offer and answers it.
	Answerer
)

func (r Role) String() string {
	switch r {
	case Offerer:
		return "offerer"
	case Answerer:
		return "answerer"
	default:
		return fmt.Sprintf("role(%d)", int(r))
	}
}

// State is where a session is in its life. It only moves forward:
//
//	New -> Connecting -> Connected -> Failed -> Closed
//
// Any state may be skipped (Connecting -> Failed, Connected -> Closed, New ->
// Closed), none is ever reported twice and none comes back. Closed is always the
// last.
type State int

const (
	// StateNew: created, no offer sent or received yet. Never reported.
	StateNew State = iota
	// StateConnecting: an offer has been sent (offerer) or received (answerer);
	// ICE and DTLS are being set up.
	StateConnecting
	// StateConnected: ICE and DTLS are up; media flows. File sources start now.
	StateConnected
	// StateFailed: the call cannot go on: ICE failed (no traffic from the partner
	// for DisconnectedTimeout+FailedTimeout, or no working candidate pair within
	// that time), the partner closed its PeerConnection, or signalling failed
	// before the call connected. The session stays usable for Stats; the owner
	// should Close it.
	StateFailed
	// StateClosed: Close was called; everything is torn down.
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateNew:
		return "new"
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateFailed:
		return "failed"
	case StateClosed:
		return "closed"
	default:
		return fmt.Sprintf("state(%d)", int(s))
	}
}
