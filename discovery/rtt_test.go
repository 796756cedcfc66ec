package discovery

import (
	"slices"
	"testing"
	"time"
)

// answerAfter claims p (seen searching) and answers the claim with v after
// d.
func answerAfter(x *mt, p PeerID, d time.Duration, v Verdict) {
	x.t.Helper()
	x.seen(p)
	if s := x.m.Status(); s.State != StateClaiming || s.Partner != p {
		x.t.Fatalf("not claiming %s: %+v", p, s)
	}
	c := x.mine
	x.sleep(d)
	x.step(ReplyReceived{From: p, Reply: Reply{ID: c.ID, Verdict: v}})
}

// TestClaimTimersFollowRoundTrips: on a network whose replies take longer
// than ClaimTimeout allows for, the claim timeout, PairWait and the
// settling delay stretch to the round trips measured (a low quantile of the
// latest eight), up to maxTimerScale times; HoldTimeout does not; a few
// slow (held) replies among quick ones change nothing.
func TestClaimTimersFollowRoundTrips(t *testing.T) {
	cfg := testConfig()
	x := newMT(t, cfg)
	x.step(Start{})
	// Before any reply: the configured timeout.
	x.seen(pa)
	if s := x.m.Status(); s.ClaimDeadline != x.now.Add(cfg.ClaimTimeout) || s.RoundTrip != 0 {
		t.Fatalf("first claim: %+v", s)
	}
	x.step(ReplyReceived{From: pa, Reply: Reply{ID: x.mine.ID, Verdict: RefuseBusy}})
	// Four replies, each 1.5 s late: under ClaimTimeout, but a held claim
	// (HoldTimeout behind the target's own) would miss it.
	slow := 1500 * time.Millisecond
	for _, p := range []PeerID{pb, pc, pd, pa} {
		answerAfter(x, p, slow, RefuseBusy)
	}
	want := cfg.HoldTimeout + 2*slow
	if got := x.m.claimTimeout(); got != want {
		t.Fatalf("claim timeout %v after replies of %v, want %v", got, slow, want)
	}
	if got := x.m.pairWait(); got != slow {
		t.Fatalf("PairWait %v, want %v (a round trip; ClaimJitter 0 stays 0: %v)", got, slow, x.m.jitter())
	}
	x.seen(pb)
	c := x.mine
	if s := x.m.Status(); s.ClaimDeadline != x.now.Add(want) || s.RoundTrip != slow {
		t.Fatalf("claim after slow replies: deadline in %v, round trip %v; want %v, %v", s.ClaimDeadline.Sub(x.now), s.RoundTrip, want, slow)
	}
	// An older claim held meanwhile still waits HoldTimeout only.
	x.step(ClaimReceived{From: pc, Claim: older})
	if got := x.sleep(cfg.HoldTimeout); !slices.Contains(got, reply(pc, older.ID, RefuseTimeout)) {
		t.Fatalf("held claim after HoldTimeout: %v", got)
	}
	// Still claiming past ClaimTimeout; failed at the stretched deadline.
	x.sleep(cfg.ClaimTimeout - cfg.HoldTimeout)
	if s := x.m.Status(); s.State != StateClaiming || x.mine != c {
		t.Fatalf("claim given up at ClaimTimeout: %+v", s)
	}
	x.sleep(want - cfg.ClaimTimeout)
	if s := x.m.Status(); s.State == StateClaiming && x.mine == c {
		t.Fatalf("claim still out at its deadline: %+v", s)
	}

	// Never more than maxTimerScale times ClaimTimeout.
	y := newMT(t, cfg)
	y.step(Start{})
	for _, p := range []PeerID{pa, pb, pc, pd, pa} {
		y.seen(p)
		c := y.mine
		y.sleep(10 * cfg.ClaimTimeout) // given up; the late reply still counts
		y.step(ReplyReceived{From: p, Reply: Reply{ID: c.ID, Verdict: RefuseBusy}})
	}
	if got := y.m.claimTimeout(); got != maxTimerScale*cfg.ClaimTimeout {
		t.Fatalf("claim timeout %v after very late replies, want the cap %v", got, maxTimerScale*cfg.ClaimTimeout)
	}

	// Quick replies with one held among them: the configured timers.
	z := newMT(t, cfg)
	z.step(Start{})
	for i, p := range []PeerID{pa, pb, pc, pd, pa, pb, pc, pd} {
		d := 20 * time.Millisecond
		if i == 3 {
			d = cfg.HoldTimeout + d
		}
		answerAfter(z, p, d, RefuseBusy)
	}
	if got, rt := z.m.claimTimeout(), z.m.Status().RoundTrip; got != cfg.ClaimTimeout || rt != 20*time.Millisecond {
		t.Fatalf("claim timeout %v (round trip %v) after quick replies and one held, want %v", got, rt, cfg.ClaimTimeout)
	}
}
