package harness

import "errors"

var (
	// ErrConfig: a Config setting is out of range or unknown.
	ErrConfig = errors.New("harness: bad config")
	// ErrInvariant: the run finished but broke an invariant (a double match,
	// a stuck node, a call with no media). Report.Violations says which.
	ErrInvariant = errors.New("harness: invariant broken")
	// ErrLaunch: a relay or node could not be started.
	ErrLaunch = errors.New("harness: launch failed")
)
