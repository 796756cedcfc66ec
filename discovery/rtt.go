package discovery

import (
	"slices"
	"time"
)

// rttSamples keeps the round trips of our latest claims: from sending a
// claim (or, after ClaimSent, from then) to its reply, whatever the
// verdict, late replies to abandoned claims included. A reply can be late
// by the target's hold (an older claim waits up to HoldTimeout behind the
// target's own), so the estimate is a low quantile of the latest samples
// (the quarter of them that came back fastest): holds move it only when
// nearly every reply was held, as a slow network moves them all.
type rttSamples struct {
	ring [rttWindow]time.Duration
	n    int           // samples so far
	est  time.Duration // the estimate (0: too few samples yet)
}

// rttWindow is how many of the latest claims' round trips count; the
// estimate needs half as many.
const rttWindow = 8

func (r *rttSamples) add(d time.Duration) {
	if d <= 0 {
		return
	}
	r.ring[r.n%rttWindow] = d
	r.n++
	k := min(r.n, rttWindow)
	if k < rttWindow/2 {
		return // too few to tell a slow network from a few held replies
	}
	s := r.ring // a copy
	slices.Sort(s[:k])
	r.est = s[k/4]
}

// estimate returns the round trip the claim timers follow, 0 while there
// are too few samples.
func (r *rttSamples) estimate() time.Duration { return r.est }

// maxTimerScale bounds how far measured round trips stretch the claim
// timeout: at most this many times ClaimTimeout.
const maxTimerScale = 4

// MaxClaimWait is the longest a matcher with cfg stays claiming one peer:
// ClaimTimeout as round trips may stretch it, and ConnectTimeout.
func MaxClaimWait(cfg Config) time.Duration {
	return maxTimerScale*cfg.ClaimTimeout + cfg.ConnectTimeout
}

// The timers of the claim protocol follow the round trips the matcher
// measures (see the package doc, Round trips): each is its Config value
// until the round trips call for more. HoldTimeout does not change: a
// hold that grew with the round trips would lengthen the replies it
// delays, and so itself.

// claimTimeout is how long a claim waits for its reply: ClaimTimeout, or a
// hold and two round trips (the claim on its way behind the target's own,
// and the reply back), at most maxTimerScale times ClaimTimeout.
func (m *Matcher) claimTimeout() time.Duration {
	base, rtt := m.cfg.ClaimTimeout, m.rtt.estimate()
	if rtt == 0 {
		return base
	}
	return min(max(base, m.cfg.HoldTimeout+2*rtt), maxTimerScale*base)
}

// jitter is the settling delay's bound: ClaimJitter, or half a round
// trip, at most a quarter of claimTimeout (zero stays zero).
func (m *Matcher) jitter() time.Duration {
	base, rtt := m.cfg.ClaimJitter, m.rtt.estimate()
	if base <= 0 || rtt == 0 {
		return base
	}
	return max(base, min(rtt/2, m.claimTimeout()/4))
}

// pairWait is how long the higher of a pair waits for its partner's claim:
// PairWait, or the settling delay and a round trip, at most claimTimeout
// (zero stays zero).
func (m *Matcher) pairWait() time.Duration {
	base, rtt := m.cfg.PairWait, m.rtt.estimate()
	if base <= 0 || rtt == 0 {
		return base
	}
	return max(base, min(m.jitter()+rtt, m.claimTimeout()))
}
