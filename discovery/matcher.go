package discovery

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"
)

// State is the matcher's state.
type State uint8

// States.
const (
	StateIdle      State = iota // not searching
	StateSearching              // announcing, and claiming when the pool allows
	StateClaiming               // one claim outstanding, still announcing
	StateMatched                // matched; the call is being set up or running
)

func (s State) String() string {
	switch s {
	case StateIdle:
		return "idle"
	case StateSearching:
		return "searching"
	case StateClaiming:
		return "claiming"
	case StateMatched:
		return "matched"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Status is a snapshot of a matcher, as of its latest Step.
type Status struct {
	State State
	// Partner is the peer we are matched with (StateMatched) or claiming
	// (StateClaiming); empty otherwise.
	Partner PeerID
	MatchID MatchID // StateMatched: the match; StateClaiming: our claim's ID
	Offerer bool    // StateMatched: we send the offer
	InCall  bool    // StateMatched: CallStarted seen
	// PoolSize counts the peers we could claim (unexpired, searching, not
	// blocked, not recent, not refused since their last presence), ignoring
	// the interest window.
	PoolSize int
	// Lonely: searching with no peer to claim; the matcher waits for a
	// presence and makes no claims.
	Lonely bool
	// NextWake is when the caller should Step(…, Tick{}) next; zero means no
	// timer is needed. It is always after the latest Step's now.
	NextWake time.Time
}

// Matcher pairs this node with one peer at a time. It is a pure state
// machine: no goroutines, no clock, no I/O, no logging; events go in through
// Step with the current time, actions come out. It is not safe for
// concurrent use: run it on one goroutine.
//
// An event that makes no sense in the current state (a reply to a claim we no
// longer hold, CallStarted for another match, Start while matched, ...) is
// dropped: Step returns no actions and nothing changes, except where the doc
// of the event says otherwise. No event panics in any state.
type Matcher struct {
	self PeerID
	cfg  Config
	rng  *rand.Rand
	now  time.Time
	acts []Action

	state       State
	interests   []string
	searchSince time.Time
	nextAnn     time.Time // next periodic Announce (Searching, Claiming)
	nextClaim   time.Time // zero: no claim scheduled
	patient     bool      // we had no candidate: wait one more jitter before the next claim
	crossPeer   PeerID    // set after RefuseCrossing: its winning claim is on the way
	crossUntil  time.Time

	pool      pool
	blocked   map[PeerID]bool
	blockedBy map[PeerID]bool
	recent    []PeerID // oldest first

	// StateClaiming
	target        PeerID
	claim         Claim
	claimDeadline time.Time
	waiter        *waiter

	// StateMatched
	partner       PeerID
	matchID       MatchID
	offerer       bool
	inCall        bool
	setupDeadline time.Time

	abandoned [8]sentClaim // ring of claims given up without an answer
	abandonAt int
}

type waiter struct {
	from     PeerID
	claim    Claim
	deadline time.Time
}

type sentClaim struct {
	to PeerID
	id MatchID
}

// maxBlockedBy bounds the set of peers that refused us with RefuseBlocked.
const maxBlockedBy = 4096

// NewMatcher returns an Idle matcher for the local peer self. rng is its only
// source of randomness (claim IDs, tickets, jitter, choice of peer): seed it
// from crypto/rand in production and with a constant in tests.
func NewMatcher(self PeerID, cfg Config, rng *rand.Rand) (*Matcher, error) {
	if self == "" {
		return nil, fmt.Errorf("matcher: empty self: %w", ErrInvalidPeer)
	}
	if rng == nil {
		return nil, ErrNilRand
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Matcher{
		self:      self,
		cfg:       cfg,
		rng:       rng,
		pool:      newPool(cfg.MaxPool),
		blocked:   make(map[PeerID]bool),
		blockedBy: make(map[PeerID]bool),
	}, nil
}

// Step feeds one event at time now and returns the actions to carry out, in
// order. now should come from a monotonic clock. Timers due at now fire in
// the same Step, whatever the event.
func (m *Matcher) Step(now time.Time, ev Event) []Action {
	m.now = now
	m.pool.prune(now)
	switch e := ev.(type) {
	case Tick:
	case Start:
		m.onStart(e)
	case Stop:
		m.onStop()
	case Next:
		m.onNext()
	case Block:
		m.onBlock(e.Peer)
	case PresenceSeen:
		m.onPresence(e)
	case PeerGone:
		m.onPeerGone(e.Peer)
	case ClaimReceived:
		m.onClaim(e.From, e.Claim)
	case ReplyReceived:
		m.onReply(e.From, e.Reply)
	case ClaimFailed:
		if m.state == StateClaiming && e.To == m.target && e.ID == m.claim.ID {
			m.claimLost()
		}
	case CallStarted:
		if m.state == StateMatched && e.ID == m.matchID {
			m.inCall = true
		}
	case CallEnded:
		if m.state == StateMatched && e.ID == m.matchID {
			m.leaveMatch(m.inCall, e.Rematch)
		}
	}
	m.advance()
	acts := m.acts
	m.acts = nil
	return acts
}

// Status returns a snapshot as of the latest Step.
func (m *Matcher) Status() Status {
	s := Status{State: m.state, NextWake: m.nextWake()}
	switch m.state {
	case StateClaiming:
		s.Partner, s.MatchID = m.target, m.claim.ID
	case StateMatched:
		s.Partner, s.MatchID, s.Offerer, s.InCall = m.partner, m.matchID, m.offerer, m.inCall
	}
	for i := range m.pool.entries {
		if m.eligible(&m.pool.entries[i]) {
			s.PoolSize++
		}
	}
	s.Lonely = m.state == StateSearching && s.PoolSize == 0
	return s
}

// Blocked reports whether peer is on the block list.
func (m *Matcher) Blocked(peer PeerID) bool { return m.blocked[peer] }

// --- event handlers ---

func (m *Matcher) onStart(e Start) {
	in := NormalizeInterests(e.Interests)
	changed := !equalStrings(in, m.interests)
	m.interests = in
	switch m.state {
	case StateIdle:
		m.startSearch()
	case StateSearching, StateClaiming:
		if changed {
			m.announce(true)
		}
	}
}

func (m *Matcher) onStop() {
	switch m.state {
	case StateSearching:
		m.announce(false)
		m.setState(StateIdle)
	case StateClaiming:
		m.abandon()
		m.refuseWaiter(RefuseNotSearching)
		m.announce(false)
		m.setState(StateIdle)
	case StateMatched:
		m.emit(EndCall{Peer: m.partner, ID: m.matchID, Reason: ReasonStop})
		m.announce(false) // again, in case the withdraw sent at the match was lost
		m.leaveMatch(m.inCall, false)
	}
}

func (m *Matcher) onNext() {
	switch m.state {
	case StateIdle:
		m.startSearch()
	case StateMatched:
		m.emit(EndCall{Peer: m.partner, ID: m.matchID, Reason: ReasonNext})
		m.leaveMatch(true, true)
	}
}

func (m *Matcher) onBlock(p PeerID) {
	if p == "" || p == m.self {
		return
	}
	m.blocked[p] = true
	m.pool.remove(p)
	if m.crossPeer == p {
		m.crossPeer = ""
	}
	if m.waiter != nil && m.waiter.from == p {
		m.refuseWaiter(RefuseBlocked)
	}
	switch {
	case m.state == StateClaiming && m.target == p:
		m.abandon()
		m.claimFailed()
	case m.state == StateMatched && m.partner == p:
		m.emit(EndCall{Peer: p, ID: m.matchID, Reason: ReasonBlocked})
		m.leaveMatch(true, true)
	}
}

func (m *Matcher) onPresence(e PresenceSeen) {
	p := e.Peer
	if p == "" || p == m.self || m.blocked[p] || m.blockedBy[p] {
		return
	}
	if !e.Searching {
		m.pool.remove(p)
		if m.crossPeer == p {
			m.crossPeer = ""
		}
		return
	}
	exp := e.Expires
	if limit := m.now.Add(m.cfg.PresenceTTL); exp.After(limit) {
		exp = limit
	}
	if !exp.After(m.now) {
		return
	}
	in := e.Interests
	if len(in) > MaxInterests {
		in = in[:MaxInterests]
	}
	m.pool.upsert(poolEntry{peer: p, expires: exp, interests: append([]string(nil), in...)})
}

func (m *Matcher) onPeerGone(p PeerID) {
	m.pool.remove(p)
	if m.crossPeer == p {
		m.crossPeer = ""
	}
	if m.waiter != nil && m.waiter.from == p {
		m.waiter = nil // its stream is gone: nobody to answer
	}
	if m.state == StateClaiming && m.target == p {
		m.claimLost()
	}
}

func (m *Matcher) onClaim(from PeerID, c Claim) {
	if from == "" || from == m.self {
		return
	}
	if m.blocked[from] {
		m.reply(from, c.ID, RefuseBlocked)
		return
	}
	switch m.state {
	case StateIdle:
		m.reply(from, c.ID, RefuseNotSearching)
	case StateMatched:
		if !m.offerer && from == m.partner && c.ID == m.matchID {
			m.reply(from, c.ID, Accept) // a duplicate of the claim that matched us
		} else {
			m.reply(from, c.ID, RefuseBusy)
		}
	case StateSearching:
		m.reply(from, c.ID, Accept)
		m.enterMatch(from, c.ID, false)
	case StateClaiming:
		m.onClaimWhileClaiming(from, c)
	}
}

func (m *Matcher) onClaimWhileClaiming(from PeerID, c Claim) {
	if from == m.target { // crossing: the smaller claim wins on both sides
		if c.Less(m.claim) {
			m.abandon()
			m.reply(from, c.ID, Accept)
			m.enterMatch(from, c.ID, false)
		} else {
			m.reply(from, c.ID, RefuseCrossing)
		}
		return
	}
	if w := m.waiter; w != nil {
		if w.from == from && w.claim == c {
			return // duplicate of the waiting claim: it is answered later
		}
		if w.from == from {
			m.refuseWaiter(RefuseTimeout) // superseded by a newer claim from the same peer
		} else {
			m.reply(from, c.ID, RefuseBusy) // one waiter at most
			return
		}
	}
	if c.Less(m.claim) { // older: wait for our claim to resolve (wait-die)
		m.waiter = &waiter{from: from, claim: c, deadline: m.now.Add(m.cfg.HoldTimeout)}
		return
	}
	m.reply(from, c.ID, RefuseBusy) // younger: dies
}

func (m *Matcher) onReply(from PeerID, r Reply) {
	if m.state == StateClaiming && from == m.target && r.ID == m.claim.ID {
		switch r.Verdict {
		case Accept:
			m.enterMatch(m.target, m.claim.ID, true)
		case RefuseCrossing:
			p := m.target
			m.claimFailed()
			if m.state == StateSearching {
				m.crossPeer, m.crossUntil = p, m.now.Add(m.cfg.ClaimTimeout)
			}
		case RefuseBlocked:
			if len(m.blockedBy) < maxBlockedBy {
				m.blockedBy[from] = true
			}
			m.pool.remove(from)
			m.claimFailed()
		default: // busy, not searching, timeout, or an invalid verdict
			m.pool.remove(from)
			m.claimFailed()
		}
		return
	}
	if r.Verdict != Accept {
		return
	}
	if m.state == StateMatched && m.offerer && from == m.partner && r.ID == m.matchID {
		return // duplicate
	}
	for i, a := range m.abandoned {
		if a.to == from && a.id == r.ID && a.to != "" {
			m.abandoned[i] = sentClaim{}
			m.emit(EndCall{Peer: from, ID: r.ID, Reason: ReasonAbandoned})
			return
		}
	}
}

// --- transitions ---

func (m *Matcher) setState(s State) {
	if s == m.state {
		return
	}
	from := m.state
	m.state = s
	if s != StateSearching {
		m.nextClaim, m.crossPeer = time.Time{}, ""
	}
	if s != StateClaiming {
		m.target, m.claim, m.claimDeadline = "", Claim{}, time.Time{}
	}
	if s != StateMatched {
		m.partner, m.matchID, m.offerer, m.inCall, m.setupDeadline = "", MatchID{}, false, false, time.Time{}
	}
	m.emit(StateChanged{From: from, To: s})
}

func (m *Matcher) startSearch() {
	m.setState(StateSearching)
	m.searchSince = m.now
	m.nextClaim, m.crossPeer, m.patient = time.Time{}, "", false
	m.announce(true)
}

func (m *Matcher) enterMatch(peer PeerID, id MatchID, offerer bool) {
	m.refuseWaiter(RefuseBusy)
	m.announce(false)
	m.setState(StateMatched)
	m.partner, m.matchID, m.offerer = peer, id, offerer
	m.inCall = false
	m.setupDeadline = m.now.Add(m.cfg.SetupTimeout)
	m.emit(Matched{Peer: peer, ID: id, Offerer: offerer})
}

// leaveMatch ends StateMatched; the caller has emitted any EndCall.
func (m *Matcher) leaveMatch(partnered, rematch bool) {
	if partnered {
		m.addRecent(m.partner)
	}
	if rematch {
		m.startSearch()
	} else {
		m.setState(StateIdle)
	}
}

// claimLost handles a claim that failed without an answer (stream error,
// timeout, peer gone): the target leaves the pool until its next presence.
func (m *Matcher) claimLost() {
	m.pool.remove(m.target)
	m.abandon()
	m.claimFailed()
}

// claimFailed ends StateClaiming without a match: a held claim is accepted
// now, else the search goes on (the next claim after a fresh jitter).
func (m *Matcher) claimFailed() {
	m.setState(StateSearching)
	if w := m.waiter; w != nil && !m.now.Before(w.deadline) {
		m.refuseWaiter(RefuseTimeout) // a late Tick: its claimer is about to give up
	}
	if w := m.waiter; w != nil {
		m.waiter = nil
		m.reply(w.from, w.claim.ID, Accept)
		m.enterMatch(w.from, w.claim.ID, false)
	}
}

// abandon remembers our outstanding claim, so that an Accept arriving after we
// gave up is answered with EndCall{ReasonAbandoned}.
func (m *Matcher) abandon() {
	m.abandoned[m.abandonAt] = sentClaim{to: m.target, id: m.claim.ID}
	m.abandonAt = (m.abandonAt + 1) % len(m.abandoned)
}

func (m *Matcher) refuseWaiter(v Verdict) {
	if w := m.waiter; w != nil {
		m.waiter = nil
		m.reply(w.from, w.claim.ID, v)
	}
}

// advance fires every timer due at m.now, then schedules or sends a claim.
func (m *Matcher) advance() {
	now := m.now
	if w := m.waiter; w != nil && !now.Before(w.deadline) {
		m.refuseWaiter(RefuseTimeout)
	}
	if m.state == StateClaiming && !now.Before(m.claimDeadline) {
		m.claimLost()
	}
	if m.state == StateMatched && !m.inCall && !now.Before(m.setupDeadline) {
		m.emit(EndCall{Peer: m.partner, ID: m.matchID, Reason: ReasonSetupTimeout})
		m.leaveMatch(false, true)
	}
	if (m.state == StateSearching || m.state == StateClaiming) && !now.Before(m.nextAnn) {
		m.announce(true)
	}
	if m.state != StateSearching {
		return
	}
	if m.crossPeer != "" {
		if now.Before(m.crossUntil) {
			return
		}
		m.crossPeer = ""
	}
	if m.nextClaim.IsZero() {
		if !m.hasCandidate() {
			m.patient = true
			return
		}
		m.nextClaim = now
		if m.cfg.ClaimJitter > 0 {
			if m.patient {
				// We were waiting with nobody to claim, so the peer that just
				// appeared has most likely just started searching, knows
				// every waiting node, and will claim one of us: let it, and
				// claim only if it does not.
				m.nextClaim = m.nextClaim.Add(m.cfg.ClaimJitter)
			}
			m.nextClaim = m.nextClaim.Add(time.Duration(m.rng.Int64N(int64(m.cfg.ClaimJitter))))
		}
		m.patient = false
	}
	if now.Before(m.nextClaim) {
		return
	}
	m.nextClaim = time.Time{}
	if p, ok := m.pick(); ok {
		m.sendClaim(p)
	}
}

func (m *Matcher) sendClaim(p PeerID) {
	var id MatchID
	binary.BigEndian.PutUint64(id[:8], m.rng.Uint64())
	binary.BigEndian.PutUint64(id[8:], m.rng.Uint64())
	c := Claim{ID: id, Ticket: m.rng.Uint64()}
	m.setState(StateClaiming)
	m.target, m.claim, m.claimDeadline = p, c, m.now.Add(m.cfg.ClaimTimeout)
	m.emit(SendClaim{To: p, Claim: c})
}

func (m *Matcher) nextWake() time.Time {
	var t time.Time
	at := func(x time.Time) {
		if !x.IsZero() && (t.IsZero() || x.Before(t)) {
			t = x
		}
	}
	if m.waiter != nil {
		at(m.waiter.deadline)
	}
	switch m.state {
	case StateSearching:
		at(m.nextAnn)
		if m.crossPeer != "" {
			at(m.crossUntil)
		} else {
			at(m.nextClaim)
		}
		if end := m.searchSince.Add(m.cfg.InterestWait); len(m.interests) > 0 && m.now.Before(end) {
			at(end)
		}
	case StateClaiming:
		at(m.nextAnn)
		at(m.claimDeadline)
	case StateMatched:
		if !m.inCall {
			at(m.setupDeadline)
		}
	}
	return t
}

// --- pool choice ---

func (m *Matcher) eligible(e *poolEntry) bool {
	return e.expires.After(m.now) && !m.blocked[e.peer] && !m.blockedBy[e.peer] && !m.isRecent(e.peer) && e.peer != m.self
}

// inInterestWindow reports whether only peers sharing an interest may be
// claimed now.
func (m *Matcher) inInterestWindow() bool {
	return len(m.interests) > 0 && m.now.Before(m.searchSince.Add(m.cfg.InterestWait))
}

func (m *Matcher) candidate(e *poolEntry, window bool) bool {
	return m.eligible(e) && (!window || sharesInterest(m.interests, e.interests))
}

func (m *Matcher) hasCandidate() bool {
	window := m.inInterestWindow()
	for i := range m.pool.entries {
		if m.candidate(&m.pool.entries[i], window) {
			return true
		}
	}
	return false
}

// pick chooses a candidate uniformly at random.
func (m *Matcher) pick() (PeerID, bool) {
	window := m.inInterestWindow()
	n := 0
	for i := range m.pool.entries {
		if m.candidate(&m.pool.entries[i], window) {
			n++
		}
	}
	if n == 0 {
		return "", false
	}
	k := m.rng.IntN(n)
	for i := range m.pool.entries {
		if e := &m.pool.entries[i]; m.candidate(e, window) {
			if k == 0 {
				return e.peer, true
			}
			k--
		}
	}
	return "", false
}

// --- helpers ---

func (m *Matcher) emit(a Action) { m.acts = append(m.acts, a) }

func (m *Matcher) reply(to PeerID, id MatchID, v Verdict) {
	m.emit(SendReply{To: to, Reply: Reply{ID: id, Verdict: v}})
}

func (m *Matcher) announce(searching bool) {
	m.emit(Announce{
		Searching: searching,
		Interests: append([]string(nil), m.interests...),
		Expires:   m.now.Add(m.cfg.PresenceTTL),
	})
	if searching {
		m.nextAnn = m.now.Add(m.cfg.AnnounceInterval)
	}
}

func (m *Matcher) addRecent(p PeerID) {
	if m.cfg.RecentPartners == 0 || p == "" {
		return
	}
	for i, q := range m.recent {
		if q == p {
			m.recent = append(m.recent[:i], m.recent[i+1:]...)
			break
		}
	}
	m.recent = append(m.recent, p)
	if len(m.recent) > m.cfg.RecentPartners {
		m.recent = m.recent[len(m.recent)-m.cfg.RecentPartners:]
	}
}

func (m *Matcher) isRecent(p PeerID) bool {
	for _, q := range m.recent {
		if q == p {
			return true
		}
	}
	return false
}

func sharesInterest(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
