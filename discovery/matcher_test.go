package discovery

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

const (
	me PeerID = "me"
	pa PeerID = "peer-a"
	pb PeerID = "peer-b"
	pc PeerID = "peer-c"
	pd PeerID = "peer-d"
)

// Inbound claims that are older (smaller) or younger (larger) than any claim
// the matcher makes (bar a 2^-64 chance).
var (
	older   = Claim{ID: MatchID{0: 0x01}, Ticket: 0}
	older2  = Claim{ID: MatchID{0: 0x02}, Ticket: 0}
	younger = Claim{ID: MatchID{0: 0xff}, Ticket: 1<<64 - 1}
)

func testConfig() Config {
	c := LocalConfig()
	c.ClaimJitter = 0 // claim in the same Step, so tables need no ticks
	return c
}

// mt drives one matcher in tests.
type mt struct {
	t    *testing.T
	m    *Matcher
	now  time.Time
	mine Claim   // our latest outgoing claim
	mid  MatchID // the current match
}

func newMT(t *testing.T, cfg Config) *mt {
	t.Helper()
	m, err := NewMatcher(me, cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	return &mt{t: t, m: m, now: t0}
}

func (x *mt) step(ev Event) []Action {
	x.t.Helper()
	acts := x.m.Step(x.now, ev)
	for _, a := range acts {
		switch a := a.(type) {
		case SendClaim:
			x.mine = a.Claim
		case Matched:
			x.mid = a.ID
		}
	}
	if w := x.m.Status().NextWake; !w.IsZero() && !w.After(x.now) {
		x.t.Fatalf("NextWake %v not after now %v", w, x.now)
	}
	return acts
}

// sleep moves the clock by d and ticks.
func (x *mt) sleep(d time.Duration) []Action {
	x.now = x.now.Add(d)
	return x.step(Tick{})
}

// seen: p announces itself searching, with the highest pairing key, so that
// we are the lower of any pair and claim at once.
func (x *mt) seen(p PeerID, interests ...string) []Action {
	return x.step(PresenceSeen{Peer: p, Expires: x.now.Add(5 * time.Second), Searching: true, Key: hiKey, Interests: interests})
}

// hiKey is above any key a matcher draws for a search that starts at t0,
// and started at the same moment (so the lower of the pair claims).
var hiKey = uint64(t0.UnixMilli())<<20 | (1<<20 - 1)

// loKey is below any key a matcher draws for a search that starts at t0,
// and started at the same moment (so the higher of the pair waits).
var loKey = uint64(t0.UnixMilli()) << 20

func (x *mt) state() State { return x.m.Status().State }

// Start states.

func idle(*mt) {}

func searching(x *mt) { x.step(Start{}) }

// claiming: claiming pa with x.mine; pb and pc are in the pool too.
func claiming(x *mt) {
	x.step(Start{})
	x.seen(pa)
	if x.state() != StateClaiming || x.m.Status().Partner != pa {
		x.t.Fatalf("not claiming pa: %+v", x.m.Status())
	}
	x.seen(pb)
	x.seen(pc)
}

// waiting: claiming pa, with pb's older claim held.
func waiting(x *mt) {
	claiming(x)
	if acts := x.step(ClaimReceived{From: pb, Claim: older}); len(acts) != 0 {
		x.t.Fatalf("held claim answered: %v", acts)
	}
}

// matched: matched with pa as answerer, under older.ID.
func matched(x *mt) {
	x.step(Start{})
	x.step(ClaimReceived{From: pa, Claim: older})
	if x.state() != StateMatched {
		x.t.Fatalf("not matched: %+v", x.m.Status())
	}
}

// norm drops StateChanged and blanks Announce's Expires and Interests, which
// other tests check.
func norm(acts []Action) []Action {
	var out []Action
	for _, a := range acts {
		switch a := a.(type) {
		case StateChanged:
			continue
		case Announce:
			out = append(out, Announce{Searching: a.Searching})
		default:
			out = append(out, a)
		}
	}
	return out
}

func reply(to PeerID, id MatchID, v Verdict) Action {
	return SendReply{To: to, Reply: Reply{ID: id, Verdict: v}}
}

var (
	withdraw = Announce{Searching: false}
	announce = Announce{Searching: true}
)

func TestTransitions(t *testing.T) {
	cfg := testConfig()
	tests := []struct {
		name  string
		from  func(*mt)
		ev    func(*mt) Event
		want  func(*mt) []Action
		state State
	}{
		// Idle.
		{"idle start", idle, ev(Start{}), acts(announce), StateSearching},
		{"idle next", idle, ev(Next{}), acts(announce), StateSearching},
		{"idle stop", idle, ev(Stop{}), nil, StateIdle},
		{"idle tick", idle, ev(Tick{}), nil, StateIdle},
		{"idle claim", idle, ev(ClaimReceived{From: pa, Claim: older}), acts(reply(pa, older.ID, RefuseNotSearching)), StateIdle},
		{"idle presence", idle, ev(PresenceSeen{Peer: pa, Expires: t0.Add(time.Second), Searching: true}), nil, StateIdle},
		{"idle reply", idle, ev(ReplyReceived{From: pa, Reply: Reply{ID: older.ID, Verdict: Accept}}), nil, StateIdle},
		{"idle call started", idle, ev(CallStarted{ID: older.ID}), nil, StateIdle},
		{"idle call ended", idle, ev(CallEnded{ID: older.ID, Rematch: true}), nil, StateIdle},
		{"idle claim failed", idle, ev(ClaimFailed{To: pa, ID: older.ID}), nil, StateIdle},
		{"idle nil event", idle, ev(nil), nil, StateIdle},
		{"idle pointer event", idle, ev(&Start{}), nil, StateIdle},

		// Searching, empty pool.
		{"searching presence claims", searching, ev(PresenceSeen{Peer: pa, Expires: t0.Add(time.Second), Searching: true, Key: hiKey}),
			func(x *mt) []Action { return []Action{SendClaim{To: pa, Claim: x.mine}} }, StateClaiming},
		{"searching presence of a lower key waits", searching, ev(PresenceSeen{Peer: pa, Expires: t0.Add(time.Second), Searching: true, Key: loKey}), nil, StateSearching},
		{"searching presence of a long search claims", searching, ev(PresenceSeen{Peer: pa, Expires: t0.Add(time.Second), Searching: true, Key: 0}),
			func(x *mt) []Action { return []Action{SendClaim{To: pa, Claim: x.mine}} }, StateClaiming},
		{"searching presence pair wait ends", func(x *mt) {
			x.step(Start{})
			x.step(PresenceSeen{Peer: pa, Expires: t0.Add(time.Hour), Searching: true, Key: loKey})
		},
			func(x *mt) Event { x.now = x.now.Add(testConfig().PairWait); return Tick{} },
			func(x *mt) []Action { return []Action{SendClaim{To: pa, Claim: x.mine}} }, StateClaiming},
		{"searching own presence", searching, ev(PresenceSeen{Peer: me, Expires: t0.Add(time.Second), Searching: true}), nil, StateSearching},
		{"searching expired presence", searching, ev(PresenceSeen{Peer: pa, Expires: t0, Searching: true}), nil, StateSearching},
		{"searching withdraw", searching, ev(PresenceSeen{Peer: pa, Expires: t0.Add(time.Second)}), nil, StateSearching},
		{"searching claim accepted", searching, ev(ClaimReceived{From: pa, Claim: older}),
			acts(reply(pa, older.ID, Accept), withdraw, Matched{Peer: pa, ID: older.ID, Offerer: false}), StateMatched},
		{"searching claim from self", searching, ev(ClaimReceived{From: me, Claim: older}), nil, StateSearching},
		{"searching stop", searching, ev(Stop{}), acts(withdraw), StateIdle},
		{"searching next", searching, ev(Next{}), nil, StateSearching},
		{"searching start same", searching, ev(Start{}), nil, StateSearching},
		{"searching start new interests", searching, ev(Start{Interests: []string{"Go"}}), acts(announce), StateSearching},
		{"searching block", searching, ev(Block{Peer: pa}), nil, StateSearching},
		{"searching stray reply", searching, ev(ReplyReceived{From: pa, Reply: Reply{ID: older.ID, Verdict: Accept}}), nil, StateSearching},
		{"searching stray call ended", searching, ev(CallEnded{ID: older.ID}), nil, StateSearching},

		// Claiming pa.
		{"claiming accepted", claiming, func(x *mt) Event { return ReplyReceived{From: pa, Reply: Reply{ID: x.mine.ID, Verdict: Accept}} },
			func(x *mt) []Action { return []Action{withdraw, Matched{Peer: pa, ID: x.mine.ID, Offerer: true}} }, StateMatched},
		{"claiming reply other id", claiming, ev(ReplyReceived{From: pa, Reply: Reply{ID: older.ID, Verdict: Accept}}), nil, StateClaiming},
		{"claiming reply other peer", claiming, func(x *mt) Event { return ReplyReceived{From: pb, Reply: Reply{ID: x.mine.ID, Verdict: Accept}} }, nil, StateClaiming},
		{"claiming failed other id", claiming, ev(ClaimFailed{To: pa, ID: older.ID}), nil, StateClaiming},
		{"claiming younger claim dies", claiming, ev(ClaimReceived{From: pb, Claim: younger}), acts(reply(pb, younger.ID, RefuseBusy)), StateClaiming},
		{"claiming older claim waits", claiming, ev(ClaimReceived{From: pb, Claim: older}), nil, StateClaiming},
		{"claiming crossing, theirs wins", claiming, ev(ClaimReceived{From: pa, Claim: older}),
			acts(reply(pa, older.ID, Accept), withdraw, Matched{Peer: pa, ID: older.ID}), StateMatched},
		{"claiming crossing, ours wins", claiming, ev(ClaimReceived{From: pa, Claim: younger}), acts(reply(pa, younger.ID, RefuseCrossing)), StateClaiming},
		{"claiming stop", claiming, ev(Stop{}), acts(withdraw), StateIdle},
		{"claiming next", claiming, ev(Next{}), nil, StateClaiming},
		{"claiming peer gone", claiming, ev(PeerGone{Peer: pa}), reclaim, StateClaiming},
		{"claiming target withdraws", claiming, ev(PresenceSeen{Peer: pa, Expires: t0.Add(time.Second)}), nil, StateClaiming},
		{"claiming block target", claiming, ev(Block{Peer: pa}), reclaim, StateClaiming},
		{"claiming failed", claiming, func(x *mt) Event { return ClaimFailed{To: pa, ID: x.mine.ID} }, reclaim, StateClaiming},
		{"claiming refused", claiming, func(x *mt) Event { return ReplyReceived{From: pa, Reply: Reply{ID: x.mine.ID, Verdict: RefuseBusy}} }, reclaim, StateClaiming},
		{"claiming times out", claiming, func(x *mt) Event { x.now = x.now.Add(cfg.ClaimTimeout); return Tick{} },
			func(x *mt) []Action { return append([]Action{announce}, reclaim(x)...) }, StateClaiming},
		{"claiming announce tick", claiming, func(x *mt) Event { x.now = x.now.Add(cfg.AnnounceInterval); return Tick{} }, acts(announce), StateClaiming},

		// Claiming pa with pb waiting.
		{"waiter refused on accept", waiting, func(x *mt) Event { return ReplyReceived{From: pa, Reply: Reply{ID: x.mine.ID, Verdict: Accept}} },
			func(x *mt) []Action {
				return []Action{reply(pb, older.ID, RefuseBusy), withdraw, Matched{Peer: pa, ID: x.mine.ID, Offerer: true}}
			}, StateMatched},
		{"waiter accepted on refusal", waiting, func(x *mt) Event { return ReplyReceived{From: pa, Reply: Reply{ID: x.mine.ID, Verdict: RefuseBusy}} },
			acts(reply(pb, older.ID, Accept), withdraw, Matched{Peer: pb, ID: older.ID}), StateMatched},
		{"waiter accepted on failure", waiting, func(x *mt) Event { return ClaimFailed{To: pa, ID: x.mine.ID} },
			acts(reply(pb, older.ID, Accept), withdraw, Matched{Peer: pb, ID: older.ID}), StateMatched},
		{"waiter accepted on crossing refusal", waiting, func(x *mt) Event {
			return ReplyReceived{From: pa, Reply: Reply{ID: x.mine.ID, Verdict: RefuseCrossing}}
		},
			acts(reply(pb, older.ID, Accept), withdraw, Matched{Peer: pb, ID: older.ID}), StateMatched},
		{"waiter times out", waiting, func(x *mt) Event { x.now = x.now.Add(cfg.HoldTimeout); return Tick{} },
			acts(reply(pb, older.ID, RefuseTimeout), announce), StateClaiming}, // LocalConfig: HoldTimeout = AnnounceInterval
		{"second waiter refused", waiting, ev(ClaimReceived{From: pc, Claim: older2}), acts(reply(pc, older2.ID, RefuseBusy)), StateClaiming},
		{"waiter duplicate", waiting, ev(ClaimReceived{From: pb, Claim: older}), nil, StateClaiming},
		{"waiter superseded", waiting, ev(ClaimReceived{From: pb, Claim: older2}), acts(reply(pb, older.ID, RefuseTimeout)), StateClaiming},
		{"waiter refused on stop", waiting, ev(Stop{}), acts(reply(pb, older.ID, RefuseNotSearching), withdraw), StateIdle},
		{"waiter blocked", waiting, ev(Block{Peer: pb}), acts(reply(pb, older.ID, RefuseBlocked)), StateClaiming},
		{"waiter gone", waiting, ev(PeerGone{Peer: pb}), nil, StateClaiming},
		{"waiter refused on crossing accept", waiting, ev(ClaimReceived{From: pa, Claim: older2}),
			acts(reply(pa, older2.ID, Accept), reply(pb, older.ID, RefuseBusy), withdraw, Matched{Peer: pa, ID: older2.ID}), StateMatched},

		// Matched with pa (answerer).
		{"matched call started", matched, ev(CallStarted{ID: older.ID}), nil, StateMatched},
		{"matched other call started", matched, ev(CallStarted{ID: older2.ID}), nil, StateMatched},
		{"matched setup timeout", matched, func(x *mt) Event { x.now = x.now.Add(cfg.SetupTimeout); return Tick{} },
			acts(EndCall{Peer: pa, ID: older.ID, Reason: ReasonSetupTimeout}, announce), StateSearching},
		{"matched call ended rematch", matched, ev(CallEnded{ID: older.ID, Rematch: true}), acts(announce), StateSearching},
		{"matched call ended", matched, ev(CallEnded{ID: older.ID}), nil, StateIdle},
		{"matched other call ended", matched, ev(CallEnded{ID: older2.ID}), nil, StateMatched},
		{"matched next", matched, ev(Next{}), acts(EndCall{Peer: pa, ID: older.ID, Reason: ReasonNext}, announce), StateSearching},
		{"matched stop", matched, ev(Stop{}), acts(EndCall{Peer: pa, ID: older.ID, Reason: ReasonStop}, withdraw), StateIdle},
		{"matched block partner", matched, ev(Block{Peer: pa}), acts(EndCall{Peer: pa, ID: older.ID, Reason: ReasonBlocked}, announce), StateSearching},
		{"matched block other", matched, ev(Block{Peer: pb}), nil, StateMatched},
		{"matched claim", matched, ev(ClaimReceived{From: pb, Claim: older2}), acts(reply(pb, older2.ID, RefuseBusy)), StateMatched},
		{"matched duplicate claim", matched, ev(ClaimReceived{From: pa, Claim: older}), acts(reply(pa, older.ID, Accept)), StateMatched},
		{"matched partner's other claim", matched, ev(ClaimReceived{From: pa, Claim: older2}), acts(reply(pa, older2.ID, RefuseBusy)), StateMatched},
		{"matched start", matched, ev(Start{Interests: []string{"go"}}), nil, StateMatched},
		{"matched stray accept", matched, ev(ReplyReceived{From: pb, Reply: Reply{ID: older2.ID, Verdict: Accept}}), nil, StateMatched},
		{"matched partner gone", matched, ev(PeerGone{Peer: pa}), nil, StateMatched},
		{"matched presence", matched, ev(PresenceSeen{Peer: pb, Expires: t0.Add(time.Second), Searching: true}), nil, StateMatched},
		{"matched tick", matched, ev(Tick{}), nil, StateMatched},

		// Blocked peers.
		{"blocked claim", func(x *mt) { x.step(Block{Peer: pa}); x.step(Start{}) }, ev(ClaimReceived{From: pa, Claim: older}),
			acts(reply(pa, older.ID, RefuseBlocked)), StateSearching},
		{"blocked presence", func(x *mt) { x.step(Block{Peer: pa}); x.step(Start{}) }, ev(PresenceSeen{Peer: pa, Expires: t0.Add(time.Second), Searching: true}),
			nil, StateSearching},
		{"blocked self", searching, ev(Block{Peer: me}), nil, StateSearching},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newMT(t, cfg)
			tt.from(x)
			got := norm(x.step(tt.ev(x)))
			var want []Action
			if tt.want != nil {
				want = tt.want(x)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("actions:\n got %#v\nwant %#v", got, want)
			}
			if s := x.state(); s != tt.state {
				t.Fatalf("state %v, want %v", s, tt.state)
			}
		})
	}
}

// reclaim: a new claim to one of the other peers in the pool (pa is out).
func reclaim(x *mt) []Action {
	s := x.m.Status()
	if s.Partner == pa {
		x.t.Fatal("claimed pa again")
	}
	return []Action{SendClaim{To: s.Partner, Claim: x.mine}}
}

func ev(e Event) func(*mt) Event { return func(*mt) Event { return e } }

func acts(a ...Action) func(*mt) []Action { return func(*mt) []Action { return a } }

func TestStatus(t *testing.T) {
	cfg := testConfig()
	x := newMT(t, cfg)
	if s := x.m.Status(); s != (Status{}) {
		t.Fatalf("new: %+v", s)
	}
	x.step(Start{})
	s := x.m.Status()
	if s.State != StateSearching || !s.Lonely || s.PoolSize != 0 || !s.NextWake.Equal(t0.Add(cfg.AnnounceInterval)) {
		t.Fatalf("lonely: %+v", s)
	}
	x.seen(pa)
	s = x.m.Status()
	if s.State != StateClaiming || s.Partner != pa || s.MatchID != x.mine.ID || s.Lonely || s.PoolSize != 1 ||
		!s.NextWake.Equal(t0.Add(cfg.AnnounceInterval)) {
		t.Fatalf("claiming: %+v", s)
	}
	x.step(ReplyReceived{From: pa, Reply: Reply{ID: x.mine.ID, Verdict: Accept}})
	s = x.m.Status()
	if s.State != StateMatched || s.Partner != pa || s.MatchID != x.mine.ID || !s.Offerer || s.InCall ||
		!s.NextWake.Equal(t0.Add(cfg.SetupTimeout)) {
		t.Fatalf("matched: %+v", s)
	}
	x.step(CallStarted{ID: x.mine.ID})
	s = x.m.Status()
	if !s.InCall || !s.NextWake.IsZero() {
		t.Fatalf("in call: %+v", s)
	}
}

func TestStateChangedAndAnnounce(t *testing.T) {
	cfg := testConfig()
	x := newMT(t, cfg)
	got := x.step(Start{Interests: []string{" Go ", "Chess"}})
	key := uint64(0)
	if len(got) == 2 {
		if a, ok := got[1].(Announce); ok {
			key = a.Key
		}
	}
	if key == 0 {
		t.Fatalf("no pairing key: %#v", got)
	}
	want := []Action{
		StateChanged{From: StateIdle, To: StateSearching},
		Announce{Searching: true, Interests: []string{"go", "chess"}, Expires: t0.Add(cfg.PresenceTTL), Key: key},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
	x.now = x.now.Add(time.Second)
	got = x.step(ClaimReceived{From: pa, Claim: older})
	want = []Action{
		reply(pa, older.ID, Accept),
		Announce{Searching: false, Interests: []string{"go", "chess"}, Expires: x.now.Add(cfg.PresenceTTL), Key: key},
		StateChanged{From: StateSearching, To: StateMatched},
		Matched{Peer: pa, ID: older.ID},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
}

func TestPeriodicAnnounce(t *testing.T) {
	cfg := testConfig()
	x := newMT(t, cfg)
	x.step(Start{})
	for i := 0; i < 5; i++ {
		w := x.m.Status().NextWake
		if !w.Equal(x.now.Add(cfg.AnnounceInterval)) {
			t.Fatalf("NextWake %v", w)
		}
		x.now = w
		if got := norm(x.step(Tick{})); !reflect.DeepEqual(got, []Action{announce}) {
			t.Fatalf("tick %d: %v", i, got)
		}
	}
	x.step(Stop{})
	if w := x.m.Status().NextWake; !w.IsZero() {
		t.Fatalf("idle NextWake %v", w)
	}
}

func TestRefusalRemovesUntilPresence(t *testing.T) {
	for _, v := range []Verdict{RefuseBusy, RefuseNotSearching, RefuseTimeout, Verdict(99)} {
		x := newMT(t, testConfig())
		x.step(Start{})
		x.seen(pa)
		got := norm(x.step(ReplyReceived{From: pa, Reply: Reply{ID: x.mine.ID, Verdict: v}}))
		if len(got) != 0 || x.state() != StateSearching || !x.m.Status().Lonely {
			t.Fatalf("%v: %v %+v", v, got, x.m.Status())
		}
		first := x.mine
		x.sleep(time.Second) // nothing to claim
		if x.state() != StateSearching {
			t.Fatalf("%v: claimed without a presence", v)
		}
		x.seen(pa) // a newer presence brings it back
		if x.state() != StateClaiming || x.mine == first {
			t.Fatalf("%v: not claiming again: %+v", v, x.m.Status())
		}
	}
}

func TestRefuseBlockedIsForever(t *testing.T) {
	x := newMT(t, testConfig())
	x.step(Start{})
	x.seen(pa)
	x.step(ReplyReceived{From: pa, Reply: Reply{ID: x.mine.ID, Verdict: RefuseBlocked}})
	x.seen(pa)
	if s := x.m.Status(); s.State != StateSearching || !s.Lonely {
		t.Fatalf("%+v", s)
	}
}

func TestClaimTimeout(t *testing.T) {
	cfg := testConfig()
	x := newMT(t, cfg)
	x.step(Start{})
	x.seen(pa)
	if w := x.m.Status().NextWake; !w.Equal(t0.Add(time.Second)) { // announce first
		t.Fatalf("NextWake %v", w)
	}
	x.sleep(cfg.ClaimTimeout - time.Millisecond)
	if x.state() != StateClaiming {
		t.Fatal("timed out early")
	}
	x.sleep(time.Millisecond)
	if s := x.m.Status(); s.State != StateSearching || !s.Lonely {
		t.Fatalf("after timeout: %+v", s)
	}
	// A late accept of the abandoned claim, while we still search: pa is
	// matched with us, so we take the match, as its offerer (and withdraw
	// the presence we announced).
	ours := x.mine
	got := norm(x.step(ReplyReceived{From: pa, Reply: Reply{ID: ours.ID, Verdict: Accept}}))
	want := []Action{withdraw, Matched{Peer: pa, ID: ours.ID, Offerer: true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("late accept: %v", got)
	}
	if s := x.m.Status(); s.State != StateMatched || s.Partner != pa || s.MatchID != ours.ID {
		t.Fatalf("after late accept: %+v", s)
	}
	if got := x.step(ReplyReceived{From: pa, Reply: Reply{ID: ours.ID, Verdict: Accept}}); len(got) != 0 {
		t.Fatalf("second late accept: %v", got)
	}
}

// gaveUp: searching again after pa left our claim unanswered for
// ClaimTimeout; it returns the claim given up.
func gaveUp(t *testing.T) (*mt, Claim) {
	t.Helper()
	cfg := testConfig()
	x := newMT(t, cfg)
	x.step(Start{})
	x.seen(pa)
	x.sleep(cfg.ClaimTimeout)
	if x.state() != StateSearching {
		t.Fatalf("not searching after ClaimTimeout: %+v", x.m.Status())
	}
	return x, x.mine
}

// TestLateAcceptWhileClaiming: a late accept that arrives while we claim
// someone else is called off, and the claim we hold goes on.
func TestLateAcceptWhileClaiming(t *testing.T) {
	x, first := gaveUp(t)
	x.seen(pb)
	x.sleep(testConfig().ClaimJitter) // settled: we claim pb
	if s := x.m.Status(); s.State != StateClaiming || s.Partner != pb {
		t.Fatalf("not claiming pb: %+v", s)
	}
	got := norm(x.step(ReplyReceived{From: pa, Reply: Reply{ID: first.ID, Verdict: Accept}}))
	if want := []Action{EndCall{Peer: pa, ID: first.ID, Reason: ReasonAbandoned}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("late accept while claiming: %v", got)
	}
	if s := x.m.Status(); s.State != StateClaiming || s.Partner != pb {
		t.Fatalf("the claim on pb did not go on: %+v", s)
	}
}

// TestLateAcceptOfExcludedPeer: a late accept from a peer we blocked since
// is called off, even while we search.
func TestLateAcceptOfExcludedPeer(t *testing.T) {
	x, ours := gaveUp(t)
	x.step(Block{Peer: pa})
	if x.state() != StateSearching {
		t.Fatalf("not searching: %v", x.state())
	}
	got := norm(x.step(ReplyReceived{From: pa, Reply: Reply{ID: ours.ID, Verdict: Accept}}))
	if want := []Action{EndCall{Peer: pa, ID: ours.ID, Reason: ReasonAbandoned}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("late accept of a blocked peer: %v", got)
	}
}

// TestClaimConnectTimeout: a claim not yet sent (the node still connects
// to its target) has ConnectTimeout more; once sent, ClaimTimeout from
// then, never more than it had; ClaimSent for another claim changes
// nothing.
func TestClaimConnectTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.ConnectTimeout = 3 * time.Second
	x := newMT(t, cfg)
	x.step(Start{})
	x.seen(pa)
	x.sleep(cfg.ClaimTimeout + cfg.ConnectTimeout - 2*time.Millisecond)
	if x.state() != StateClaiming {
		t.Fatal("an unsent claim timed out before ClaimTimeout+ConnectTimeout")
	}
	x.sleep(2 * time.Millisecond)
	if x.state() != StateSearching {
		t.Fatalf("an unsent claim outlived ClaimTimeout+ConnectTimeout: %+v", x.m.Status())
	}

	// Sent after a slow connection: ClaimTimeout from then.
	x = newMT(t, cfg)
	x.step(Start{})
	x.seen(pa)
	x.sleep(time.Second)
	x.step(ClaimSent{To: pb, ID: x.mine.ID})  // another target: no change
	x.step(ClaimSent{To: pa, ID: MatchID{1}}) // another claim: no change
	x.step(ClaimSent{To: pa, ID: x.mine.ID})
	x.sleep(cfg.ClaimTimeout - time.Millisecond)
	if x.state() != StateClaiming {
		t.Fatal("a sent claim timed out before ClaimTimeout")
	}
	x.sleep(time.Millisecond)
	if x.state() != StateSearching {
		t.Fatalf("a sent claim outlived ClaimTimeout: %+v", x.m.Status())
	}

	// Sent late: the deadline does not move past ClaimTimeout+ConnectTimeout.
	x = newMT(t, cfg)
	x.step(Start{})
	x.seen(pa)
	x.sleep(cfg.ConnectTimeout + time.Second)
	x.step(ClaimSent{To: pa, ID: x.mine.ID})
	x.sleep(cfg.ClaimTimeout - time.Second)
	if x.state() != StateSearching {
		t.Fatalf("a late ClaimSent pushed the deadline out: %+v", x.m.Status())
	}
}

func TestCrossingRefusedWaits(t *testing.T) {
	cfg := testConfig()
	x := newMT(t, cfg)
	claiming(x) // claiming pa; pb, pc in the pool
	got := norm(x.step(ReplyReceived{From: pa, Reply: Reply{ID: x.mine.ID, Verdict: RefuseCrossing}}))
	if len(got) != 0 || x.state() != StateSearching {
		t.Fatalf("%v %+v", got, x.m.Status())
	}
	hold := x.now.Add(cfg.ClaimTimeout)
	// No claim to anyone before the hold ends, announcements go on.
	for x.now.Before(hold) {
		w := x.m.Status().NextWake
		if w.After(hold) {
			t.Fatalf("NextWake %v after hold end %v", w, hold)
		}
		x.now = w
		for _, a := range x.step(Tick{}) {
			if _, ok := a.(SendClaim); ok && x.now.Before(hold) {
				t.Fatalf("claimed during hold at %v", x.now)
			}
		}
	}
	if x.state() != StateClaiming {
		t.Fatalf("no claim after hold: %+v", x.m.Status())
	}
}

func TestCrossingWinnerArrives(t *testing.T) {
	x := newMT(t, testConfig())
	claiming(x)
	x.step(ReplyReceived{From: pa, Reply: Reply{ID: x.mine.ID, Verdict: RefuseCrossing}})
	got := norm(x.step(ClaimReceived{From: pa, Claim: older}))
	want := []Action{reply(pa, older.ID, Accept), withdraw, Matched{Peer: pa, ID: older.ID}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%v", got)
	}
}

func TestCrossingHoldEndsOnWithdraw(t *testing.T) {
	x := newMT(t, testConfig())
	claiming(x)
	x.step(ReplyReceived{From: pa, Reply: Reply{ID: x.mine.ID, Verdict: RefuseCrossing}})
	x.step(PresenceSeen{Peer: pa, Expires: x.now.Add(time.Second)}) // pa matched elsewhere
	if s := x.m.Status(); s.State != StateClaiming || s.Partner == pa {
		t.Fatalf("%+v", s)
	}
}

func TestCrossingLoserIgnoresLateReplies(t *testing.T) {
	x := newMT(t, testConfig())
	claiming(x)
	ours := x.mine
	x.step(ClaimReceived{From: pa, Claim: older}) // theirs wins: matched
	if got := x.step(ReplyReceived{From: pa, Reply: Reply{ID: ours.ID, Verdict: RefuseCrossing}}); len(got) != 0 {
		t.Fatalf("%v", got)
	}
	// If pa had given up its claim and accepted ours, tell it.
	got := norm(x.step(ReplyReceived{From: pa, Reply: Reply{ID: ours.ID, Verdict: Accept}}))
	if !reflect.DeepEqual(got, []Action{EndCall{Peer: pa, ID: ours.ID, Reason: ReasonAbandoned}}) {
		t.Fatalf("%v", got)
	}
	if s := x.m.Status(); s.State != StateMatched || s.MatchID != older.ID {
		t.Fatalf("%+v", s)
	}
}

func TestRecentPartners(t *testing.T) {
	cfg := testConfig()
	cfg.RecentPartners = 2
	x := newMT(t, cfg)
	matched(x) // with pa
	x.step(CallStarted{ID: x.mid})
	x.step(Next{})
	// pa is recent: not claimed, even alone in the pool.
	x.seen(pa)
	if s := x.m.Status(); s.State != StateSearching || !s.Lonely || s.NextWake.Sub(x.now) != cfg.AnnounceInterval {
		t.Fatalf("claimed a recent partner: %+v", s)
	}
	// Its claim is refused too.
	if got := norm(x.step(ClaimReceived{From: pa, Claim: older2})); !reflect.DeepEqual(got, []Action{reply(pa, older2.ID, RefuseBusy)}) {
		t.Fatalf("%v", got)
	}
	// pb, then pc: two more partners push pa out.
	for i, p := range []PeerID{pb, pc} {
		id := Claim{ID: MatchID{byte(10 + i)}}
		x.step(ClaimReceived{From: p, Claim: id})
		x.step(CallStarted{ID: id.ID})
		x.step(CallEnded{ID: id.ID, Rematch: true})
	}
	x.seen(pa)
	if s := x.m.Status(); s.State != StateClaiming || s.Partner != pa {
		t.Fatalf("pa not eligible again: %+v", s)
	}
}

func TestSetupTimeoutNotRecent(t *testing.T) {
	cfg := testConfig()
	x := newMT(t, cfg)
	matched(x)
	x.sleep(cfg.SetupTimeout)
	if x.state() != StateSearching {
		t.Fatal(x.state())
	}
	x.seen(pa)
	if s := x.m.Status(); s.State != StateClaiming || s.Partner != pa {
		t.Fatalf("a failed setup put pa in the recent list: %+v", s)
	}
}

func TestInterestWindow(t *testing.T) {
	cfg := testConfig()
	x := newMT(t, cfg)
	x.step(Start{Interests: []string{"go"}})
	x.seen(pa, "chess")
	x.seen(pb)
	if s := x.m.Status(); s.State != StateSearching || s.PoolSize != 2 || s.Lonely {
		t.Fatalf("claimed without a shared interest: %+v", s)
	}
	if w := x.m.Status().NextWake; !w.Equal(t0.Add(time.Second)) {
		t.Fatalf("NextWake %v", w)
	}
	x.seen(pc, "chess", "go")
	if s := x.m.Status(); s.State != StateClaiming || s.Partner != pc {
		t.Fatalf("want a claim to pc: %+v", s)
	}
	x.step(ClaimFailed{To: pc, ID: x.mine.ID})
	// The window ends: anyone will do.
	for x.now.Before(t0.Add(cfg.InterestWait)) {
		x.now = x.m.Status().NextWake
		x.step(Tick{})
		if x.now.Before(t0.Add(cfg.InterestWait)) && x.state() != StateSearching {
			t.Fatalf("claimed at %v: %+v", x.now.Sub(t0), x.m.Status())
		}
		x.seen(pa, "chess") // refresh the pool
		x.seen(pb)
	}
	if s := x.m.Status(); s.State != StateClaiming || (s.Partner != pa && s.Partner != pb) {
		t.Fatalf("after window: %+v", s)
	}
}

// TestSettle: the pairing decision waits for the pool to settle, is pushed
// back by new candidates up to 2*ClaimJitter, and runs again after a refusal.
func TestSettle(t *testing.T) {
	cfg := testConfig()
	cfg.ClaimJitter = 300 * time.Millisecond
	x := newMT(t, cfg)
	x.seen(pa) // known before the search starts
	x.step(Start{})
	s := x.m.Status()
	if s.State != StateSearching || s.NextWake.Before(x.now.Add(cfg.ClaimJitter/2)) || !s.NextWake.Before(x.now.Add(cfg.ClaimJitter)) {
		t.Fatalf("want a decision within [J/2, J): %+v", s)
	}
	x.now = s.NextWake.Add(-time.Nanosecond)
	x.step(Tick{})
	if x.state() != StateSearching {
		t.Fatal("claimed early")
	}
	x.now = s.NextWake
	if got := norm(x.step(Tick{})); !reflect.DeepEqual(got, []Action{SendClaim{To: pa, Claim: x.mine}}) {
		t.Fatalf("%v", got)
	}
	// Refused: the decision runs again, after a new settle, over the others.
	x.seen(pb)
	x.step(ReplyReceived{From: pa, Reply: Reply{ID: x.mine.ID, Verdict: RefuseBusy}})
	s = x.m.Status()
	if s.State != StateSearching || s.NextWake.Before(x.now.Add(cfg.ClaimJitter/2)) || !s.NextWake.Before(x.now.Add(cfg.ClaimJitter)) {
		t.Fatalf("want a new decision within [J/2, J): %+v", s)
	}
	// New candidates push it back, never past 2*ClaimJitter.
	start := x.now
	for i, p := range []PeerID{pc, "peer-d", "peer-e", "peer-f", "peer-g"} {
		x.now = x.now.Add(cfg.ClaimJitter / 3)
		if x.state() != StateSearching {
			t.Fatalf("decided at %v despite arrivals", x.now.Sub(start))
		}
		x.seen(p)
		if w := x.m.Status().NextWake; i < 3 && w.Before(x.now.Add(cfg.ClaimJitter/2)) || w.After(start.Add(2*cfg.ClaimJitter)) {
			t.Fatalf("arrival %d: NextWake %v after start", i, w.Sub(start))
		}
	}
	for x.state() == StateSearching {
		x.now = x.m.Status().NextWake
		x.step(Tick{})
	}
	if x.now.After(start.Add(2 * cfg.ClaimJitter)) {
		t.Fatalf("decided %v after the refusal", x.now.Sub(start))
	}
}

// TestPairing: the candidates and we are paired by key; the lower of our
// pair claims, the higher waits PairWait and then claims, the odd one out
// waits and then claims at random.
func TestPairing(t *testing.T) {
	cfg := testConfig()
	cfg.ClaimJitter = 100 * time.Millisecond // all presences arrive before the decision
	tests := []struct {
		name  string
		keys  func(me uint64) []uint64 // of pa, pb and pc, as many as given
		claim PeerID                   // claimed at once; "" if none
		after PeerID                   // claimed after PairWait; "?" for any
	}{
		{"lowest of all", func(k uint64) []uint64 { return []uint64{k + 1, k + 2, k + 3} }, pa, ""},
		{"lower of the second pair", func(k uint64) []uint64 { return []uint64{k - 2, k - 1, k + 5} }, pc, ""},
		{"higher of the first pair", func(k uint64) []uint64 { return []uint64{k - 1, k + 1, k + 2} }, "", pa},
		{"higher of the second pair", func(k uint64) []uint64 { return []uint64{k - 3, k - 2, k - 1} }, "", pc},
		{"odd one out", func(k uint64) []uint64 { return []uint64{k - 2, k - 1} }, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newMT(t, cfg)
			x.step(Start{})
			k := x.m.key
			if k < 10 || k > hiKey-10 {
				t.Fatalf("key %x too close to an end", k)
			}
			for i, key := range tt.keys(k) {
				x.step(PresenceSeen{Peer: []PeerID{pa, pb, pc}[i], Expires: x.now.Add(time.Hour), Searching: true, Key: key})
			}
			x.sleep(cfg.ClaimJitter) // the decision
			s := x.m.Status()
			if tt.claim != "" {
				if s.State != StateClaiming || s.Partner != tt.claim {
					t.Fatalf("want a claim to %s at once: %+v", tt.claim, s)
				}
				return
			}
			if tt.after == "" { // the odd one out: lonely until the pool changes
				if s.State != StateSearching || !s.Lonely || s.PoolSize != 2 || s.NextWake.After(t0.Add(cfg.AnnounceInterval)) {
					t.Fatalf("want a lonely wait: %+v", s)
				}
				x.sleep(cfg.PairWait)
				x.step(PresenceSeen{Peer: pc, Expires: x.now.Add(time.Hour), Searching: true, Key: k + 1})
				x.sleep(cfg.ClaimJitter)
				if s = x.m.Status(); s.State != StateClaiming || s.Partner != pc {
					t.Fatalf("want a claim to the newcomer: %+v", s)
				}
				return
			}
			if s.State != StateSearching || s.Lonely || !s.NextWake.Equal(x.now.Add(cfg.PairWait)) {
				t.Fatalf("want a PairWait: %+v", s)
			}
			x.sleep(cfg.PairWait)
			s = x.m.Status()
			if s.State != StateClaiming || s.Partner != tt.after {
				t.Fatalf("want a claim to %s after PairWait: %+v", tt.after, s)
			}
		})
	}
}

// TestPairingPartnerLeaves: the higher of a pair whose partner withdraws
// pairs again at once instead of waiting out PairWait.
func TestPairingPartnerLeaves(t *testing.T) {
	x := newMT(t, testConfig())
	x.step(Start{})
	k := x.m.key
	x.step(PresenceSeen{Peer: pa, Expires: x.now.Add(time.Hour), Searching: true, Key: k - 1})
	x.step(PresenceSeen{Peer: pb, Expires: x.now.Add(time.Hour), Searching: true, Key: k - 2})
	if x.state() != StateSearching {
		t.Fatalf("%+v", x.m.Status())
	}
	// pa and pb pair below us? No: ranks pb, pa, me: pb claims pa, we are
	// odd. pa withdraws (matched): pb and we pair, we are higher.
	x.step(PresenceSeen{Peer: pa, Expires: x.now.Add(time.Hour)})
	x.step(PresenceSeen{Peer: pc, Expires: x.now.Add(time.Hour), Searching: true, Key: k + 1})
	// Now pb, me, pc: we are higher of (pb, me); pb withdraws: we pair with pc
	// as the lower and claim at once.
	x.step(PresenceSeen{Peer: pb, Expires: x.now.Add(time.Hour)})
	x.step(Tick{})
	if s := x.m.Status(); s.State != StateClaiming || s.Partner != pc {
		t.Fatalf("want a claim to pc: %+v", s)
	}
}

func TestPoolExpiryAndMax(t *testing.T) {
	cfg := testConfig()
	cfg.MaxPool = 2
	x := newMT(t, cfg)
	x.step(PresenceSeen{Peer: pa, Expires: t0.Add(time.Second), Searching: true})
	x.step(PresenceSeen{Peer: pb, Expires: t0.Add(3 * time.Second), Searching: true})
	x.step(PresenceSeen{Peer: pc, Expires: t0.Add(500 * time.Millisecond), Searching: true}) // dropped: expires first
	if n := x.m.Status().PoolSize; n != 2 {
		t.Fatalf("pool %d", n)
	}
	x.step(PresenceSeen{Peer: pc, Expires: t0.Add(2 * time.Second), Searching: true}) // replaces pa
	x.step(PresenceSeen{Peer: pb, Expires: t0.Add(time.Hour), Searching: true})       // capped at PresenceTTL
	x.sleep(2 * time.Second)                                                          // pc expires
	if n := x.m.Status().PoolSize; n != 1 {
		t.Fatalf("pool %d", n)
	}
	x.sleep(cfg.PresenceTTL)
	if n := x.m.Status().PoolSize; n != 0 {
		t.Fatalf("pool %d after TTL", n)
	}
	x.step(Start{})
	if !x.m.Status().Lonely {
		t.Fatal("not lonely")
	}
}

func TestNewMatcherErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	if _, err := NewMatcher("", LocalConfig(), rng); err == nil {
		t.Fatal("empty self")
	}
	if _, err := NewMatcher(me, LocalConfig(), nil); err != ErrNilRand {
		t.Fatal("nil rng")
	}
	if _, err := NewMatcher(me, Config{}, rng); err == nil {
		t.Fatal("zero config")
	}
}

// TestDeterministic: the same seed and events give the same actions.
func TestDeterministic(t *testing.T) {
	run := func() []Action {
		m, _ := NewMatcher(me, LocalConfig(), rand.New(rand.NewPCG(7, 7)))
		var all []Action
		now := t0
		all = append(all, m.Step(now, Start{})...)
		for i := 0; i < 50; i++ {
			p := PeerID(rune('a' + i%26))
			all = append(all, m.Step(now, PresenceSeen{Peer: p, Expires: now.Add(5 * time.Second), Searching: true, Key: hiKey - uint64(i)})...)
			now = now.Add(37 * time.Millisecond)
			all = append(all, m.Step(now, Tick{})...)
			if s := m.Status(); s.State == StateClaiming && i%3 == 0 {
				all = append(all, m.Step(now, ReplyReceived{From: s.Partner, Reply: Reply{ID: s.MatchID, Verdict: RefuseBusy}})...)
			}
		}
		return all
	}
	a, b := run(), run()
	if !reflect.DeepEqual(a, b) || len(a) < 20 {
		t.Fatalf("runs differ or too short (%d actions)", len(a))
	}
	if !slices.ContainsFunc(a, func(a Action) bool { _, ok := a.(SendClaim); return ok }) {
		t.Fatal("no claims")
	}
}

// msKey is a pairing key for a search that started d after (before, if
// negative) the one whose key is k.
func msKey(k uint64, d time.Duration) uint64 {
	return uint64(int64(keyMillis(k))+d.Milliseconds())<<20 | 1
}

// waitingPool: pa and pb have searched for a while (pa longer); we are in a
// call with pc, the offerer if offerer.
func waitingPool(t *testing.T, offerer bool) *mt {
	t.Helper()
	x := newMT(t, testConfig())
	x.step(Start{})
	if offerer {
		x.step(ReplyReceived{From: pc, Reply: Reply{ID: x.claimTo(pc), Verdict: Accept}})
	} else {
		x.step(ClaimReceived{From: pc, Claim: older})
	}
	x.step(CallStarted{ID: x.m.Status().MatchID})
	if s := x.m.Status(); s.State != StateMatched || s.Offerer != offerer {
		t.Fatalf("not in a call: %+v", s)
	}
	x.now = x.now.Add(3 * time.Second)
	now := uint64(x.now.UnixMilli()) << 20
	x.step(PresenceSeen{Peer: pa, Expires: x.now.Add(time.Hour), Searching: true, Key: now - 900<<20})
	x.step(PresenceSeen{Peer: pb, Expires: x.now.Add(time.Hour), Searching: true, Key: now - 300<<20})
	x.now = x.now.Add(10 * time.Millisecond)
	return x
}

// claimTo makes the matcher (searching, with an empty pool) claim p, and
// returns the claim's id.
func (x *mt) claimTo(p PeerID) MatchID {
	x.t.Helper()
	x.seen(p)
	if s := x.m.Status(); s.State != StateClaiming || s.Partner != p {
		x.t.Fatalf("not claiming %s: %+v", p, s)
	}
	return x.mine.ID
}

// TestNewcomerClaimsWaiting: a search that starts while peers that searched
// before it are still searching claims one in the same Step, without
// announcing itself: the offerer of the call that just ended the longest
// waiting, the answerer the next.
func TestNewcomerClaimsWaiting(t *testing.T) {
	for _, tt := range []struct {
		offerer bool
		want    PeerID
	}{{true, pa}, {false, pb}} {
		x := waitingPool(t, tt.offerer)
		acts := x.step(Next{})
		if s := x.m.Status(); s.State != StateClaiming || s.Partner != tt.want {
			t.Fatalf("offerer %v: want a claim to %s at once: %+v", tt.offerer, tt.want, s)
		}
		for _, a := range acts {
			if a, ok := a.(Announce); ok && a.Searching {
				t.Fatalf("offerer %v: announced before its claim was answered: %v", tt.offerer, acts)
			}
		}
		// Accepted: matched without a presence, so no withdraw either.
		acts = x.step(ReplyReceived{From: tt.want, Reply: Reply{ID: x.mine.ID, Verdict: Accept}})
		if x.state() != StateMatched || slices.ContainsFunc(acts, func(a Action) bool { _, ok := a.(Announce); return ok }) {
			t.Fatalf("offerer %v: want a silent match: %v %+v", tt.offerer, acts, x.m.Status())
		}
	}
}

// TestNewcomerClaimsConnected: among the longest waiting, a newcomer
// claims one it is connected to (no dial before the claim), starting from
// its own rank (the offerer the first, the answerer the second) and
// wrapping around; with none connected, the rank alone decides; a peer
// below the waitChoice longest waiting is not chosen for being connected.
func TestNewcomerClaimsConnected(t *testing.T) {
	pe, pf, pg, ph := PeerID("peer-e"), PeerID("peer-f"), PeerID("peer-g"), PeerID("peer-h")
	for _, tt := range []struct {
		name      string
		offerer   bool
		connected []PeerID // of pd, pe, pf, pg, ph (pd waited longest)
		want      PeerID
	}{
		{"offerer, none connected", true, nil, pd},
		{"answerer, none connected", false, nil, pe},
		{"offerer, third connected", true, []PeerID{pf}, pf},
		{"answerer, first and third connected", false, []PeerID{pd, pf}, pf},
		{"answerer, only the first connected", false, []PeerID{pd}, pd},
		{"offerer, all connected", true, []PeerID{pd, pe, pf, pg, ph}, pd},
		{"offerer, only the fifth connected", true, []PeerID{ph}, pd},
	} {
		x := newMT(t, testConfig())
		x.step(Start{})
		if tt.offerer {
			x.step(ReplyReceived{From: pc, Reply: Reply{ID: x.claimTo(pc), Verdict: Accept}})
		} else {
			x.step(ClaimReceived{From: pc, Claim: older})
		}
		x.step(CallStarted{ID: x.m.Status().MatchID})
		x.now = x.now.Add(3 * time.Second)
		now := uint64(x.now.UnixMilli()) << 20
		for i, p := range []PeerID{pd, pe, pf, pg, ph} {
			x.step(PresenceSeen{Peer: p, Expires: x.now.Add(time.Hour), Searching: true,
				Key: now - uint64(900-100*i)<<20, Connected: slices.Contains(tt.connected, p)})
		}
		x.now = x.now.Add(10 * time.Millisecond)
		x.step(Next{})
		if s := x.m.Status(); s.State != StateClaiming || s.Partner != tt.want {
			t.Errorf("%s: want a claim to %s: %+v", tt.name, tt.want, s)
		}
	}
}

// TestNewcomerRefusedAnnounces: when its claim of a waiting peer is refused,
// the search announces itself, tries the next waiting peer, and after
// maxWaitClaims refusals stops claiming waiting peers.
func TestNewcomerRefusedAnnounces(t *testing.T) {
	x := waitingPool(t, true)
	x.step(Next{})
	acts := x.step(ReplyReceived{From: pa, Reply: Reply{ID: x.mine.ID, Verdict: RefuseBusy}})
	if !slices.ContainsFunc(acts, func(a Action) bool { a2, ok := a.(Announce); return ok && a2.Searching }) {
		t.Fatalf("no announcement after the refusal: %v", acts)
	}
	if s := x.m.Status(); s.State != StateClaiming || s.Partner != pb {
		t.Fatalf("want a claim to the next waiting peer: %+v", s)
	}
	x.step(ReplyReceived{From: pb, Reply: Reply{ID: x.mine.ID, Verdict: RefuseBusy}})
	// A third peer that waited too: not claimed at once.
	x.step(PresenceSeen{Peer: pd, Expires: x.now.Add(time.Hour), Searching: true, Key: msKey(x.m.key, -time.Second)})
	if s := x.m.Status(); s.State != StateSearching {
		t.Fatalf("claimed a waiting peer after %d refusals: %+v", maxWaitClaims, s)
	}
}

// TestWaitingPeerWaitsForNewcomer: we searched first; a newcomer's presence
// pairs it with us, and we wait PairWait for its claim instead of claiming
// it, then claim it ourselves.
func TestWaitingPeerWaitsForNewcomer(t *testing.T) {
	x := newMT(t, testConfig())
	x.step(Start{})
	x.now = x.now.Add(500 * time.Millisecond)
	x.step(PresenceSeen{Peer: pa, Expires: x.now.Add(time.Hour), Searching: true, Key: msKey(x.m.key, 500*time.Millisecond)})
	if s := x.m.Status(); s.State != StateSearching || s.Lonely || !s.NextWake.Equal(x.now.Add(testConfig().PairWait)) {
		t.Fatalf("want a PairWait for the newcomer's claim: %+v", s)
	}
	x.sleep(testConfig().PairWait)
	if s := x.m.Status(); s.State != StateClaiming || s.Partner != pa {
		t.Fatalf("want a claim to the newcomer after PairWait: %+v", s)
	}
}

func TestStateSearching(t *testing.T) {
	for s, want := range map[State]bool{StateIdle: false, StateSearching: true, StateClaiming: true, StateMatched: false} {
		if s.Searching() != want {
			t.Errorf("%v.Searching() = %v, want %v", s, !want, want)
		}
	}
}
