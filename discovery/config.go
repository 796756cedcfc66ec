package discovery

import (
	"errors"
	"fmt"
	"time"
)

// Config holds the matcher's timers and limits. Build one from DefaultConfig
// or LocalConfig and change fields; NewMatcher calls Validate.
type Config struct {
	// ClaimTimeout: how long an outgoing claim may wait for its reply before
	// it counts as failed. Also how long a node that got RefuseCrossing waits
	// for the winning claim before claiming anyone else. Measured round
	// trips stretch it, and ClaimJitter and PairWait (see the package doc,
	// Round trips).
	ClaimTimeout time.Duration
	// ConnectTimeout: how much longer a claim may take before it is sent
	// (ClaimSent): the node may first have to connect to its target. Once
	// sent, the claim has ClaimTimeout left for its reply. Zero: a claim
	// has ClaimTimeout in all, sent or not (a node that never reports
	// ClaimSent must leave it zero).
	ConnectTimeout time.Duration
	// HoldTimeout: how long an older inbound claim may wait for our own claim
	// to resolve before it is refused with RefuseTimeout. Must be less than
	// ClaimTimeout, by at least a round trip, so the waiter hears in time.
	HoldTimeout time.Duration
	// ClaimJitter: how long the pool must settle before we pair. The
	// pairing decision (see the package doc) runs a random delay in
	// [ClaimJitter/2, ClaimJitter) after the search starts, after the first
	// candidate appears or after a failed claim; every new candidate in the
	// meantime pushes it back by such a delay, up to 2*ClaimJitter after the
	// first. About one round trip lets the presence of peers that started
	// together arrive, so that they all pair on the same view. Zero decides
	// at once.
	ClaimJitter time.Duration
	// PairWait: how long the higher of a pair waits for its partner's claim
	// before claiming the partner itself, and how long the odd one out waits
	// before claiming a peer at random. At least ClaimJitter plus a round
	// trip, so that a partner who heard of us late still claims first.
	PairWait time.Duration
	// SetupTimeout: a match whose call has not started (no CallStarted) after
	// this long is ended with EndCall{Reason: ReasonSetupTimeout}.
	SetupTimeout time.Duration
	// AnnounceInterval: how often a searching node republishes its presence.
	AnnounceInterval time.Duration
	// PresenceTTL: how long a presence stays valid; our announcements expire
	// this long after they are made, and a received presence is kept no
	// longer than this. Must exceed AnnounceInterval (twice it survives one
	// lost announcement).
	PresenceTTL time.Duration
	// RecentPartners: how many of the latest partners (calls that started,
	// and peers left with Next) we never pair with: never claimed, their
	// claims refused (RefuseBusy). Zero disables the rule.
	RecentPartners int
	// InterestWait: for this long after a search starts, a node with
	// interests claims only peers that share one; then anyone.
	InterestWait time.Duration
	// MaxPool: most peers kept in the pool of available peers.
	MaxPool int
}

// DefaultConfig returns timers for the internet.
func DefaultConfig() Config {
	return Config{
		ClaimTimeout:     5 * time.Second,
		HoldTimeout:      3 * time.Second,
		ClaimJitter:      100 * time.Millisecond,
		PairWait:         500 * time.Millisecond,
		SetupTimeout:     15 * time.Second,
		AnnounceInterval: 5 * time.Second,
		PresenceTTL:      20 * time.Second,
		RecentPartners:   3,
		InterestWait:     10 * time.Second,
		MaxPool:          1024,
	}
}

// LocalConfig returns fast timers for nodes on one machine or LAN (tests, the
// demo, the harness).
func LocalConfig() Config {
	return Config{
		ClaimTimeout:     2 * time.Second,
		HoldTimeout:      1 * time.Second,
		ClaimJitter:      100 * time.Millisecond,
		PairWait:         400 * time.Millisecond,
		SetupTimeout:     10 * time.Second,
		AnnounceInterval: 1 * time.Second,
		PresenceTTL:      5 * time.Second,
		RecentPartners:   1,
		InterestWait:     2 * time.Second,
		MaxPool:          256,
	}
}

// Validate reports every bad value or relation, each error wrapping ErrConfig.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			bad("%s must be positive, got %v", name, d)
		}
	}
	positive("ClaimTimeout", c.ClaimTimeout)
	positive("HoldTimeout", c.HoldTimeout)
	positive("SetupTimeout", c.SetupTimeout)
	positive("AnnounceInterval", c.AnnounceInterval)
	positive("PresenceTTL", c.PresenceTTL)
	if c.ClaimJitter < 0 {
		bad("ClaimJitter must not be negative, got %v", c.ClaimJitter)
	}
	if c.PairWait < 0 {
		bad("PairWait must not be negative, got %v", c.PairWait)
	}
	if c.ConnectTimeout < 0 {
		bad("ConnectTimeout must not be negative, got %v", c.ConnectTimeout)
	}
	if c.InterestWait < 0 {
		bad("InterestWait must not be negative, got %v", c.InterestWait)
	}
	if c.RecentPartners < 0 {
		bad("RecentPartners must not be negative, got %d", c.RecentPartners)
	}
	if c.MaxPool <= 0 {
		bad("MaxPool must be positive, got %d", c.MaxPool)
	}
	if c.HoldTimeout > 0 && c.ClaimTimeout > 0 && c.HoldTimeout >= c.ClaimTimeout {
		bad("HoldTimeout (%v) must be less than ClaimTimeout (%v)", c.HoldTimeout, c.ClaimTimeout)
	}
	if c.AnnounceInterval > 0 && c.PresenceTTL > 0 && c.AnnounceInterval >= c.PresenceTTL {
		bad("AnnounceInterval (%v) must be less than PresenceTTL (%v)", c.AnnounceInterval, c.PresenceTTL)
	}
	return errors.Join(errs...)
}
