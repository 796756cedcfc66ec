package node

import "errors"

var (
	// ErrClosed is returned by calls on a node that was closed.
	ErrClosed = errors.New("node closed")
	// ErrInCall refuses Start while a call is under way (use Next).
	ErrInCall = errors.New("already matched or in a call; use next")
	// ErrNotStarted refuses Next on a node that is not searching or in a call.
	ErrNotStarted = errors.New("not started; use start")
	// ErrNoPartner refuses Block without a peer when there is no partner.
	ErrNoPartner = errors.New("no partner to block")
	// ErrNoPrivacy refuses privacy mode where there are no TURN relays.
	ErrNoPrivacy = errors.New("privacy mode not available")
)

// errNoStream means a signal was produced before the call had its stream.
var errNoStream = errors.New("signal stream not attached")
