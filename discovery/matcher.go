package discovery

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
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

// Searching reports whether s is part of a search: searching, or claiming
// (a claim outstanding, still announcing).
func (s State) Searching() bool { return s == StateSearching || s == StateClaiming }

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
	// Lonely: searching with nobody to pair with: no peer to claim, or
	// every candidate pairs with another (we are the odd one out). The
	// matcher waits for the pool to change and makes no claims.
	Lonely bool
	// NextWake is when the caller should Step(…, Tick{}) next; zero means no
	// timer is needed. It is always after the latest Step's now.
	NextWake time.Time
	// ClaimDeadline (StateClaiming) is when our claim fails if no reply
	// has come: ClaimTimeout (and ConnectTimeout) after it went out, or
	// more on a slow network (see RoundTrip).
	ClaimDeadline time.Time
	// RoundTrip is the claim round trip the claim timers follow (see the
	// package doc, Round trips); zero until enough claims were answered.
	RoundTrip time.Duration
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
	self  PeerID
	selfH uint64 // peerHash(self)
	cfg   Config
	rng   *rand.Rand
	now   time.Time
	acts  []Action

	state       State
	interests   []string
	searchSince time.Time
	key         uint64    // pairing key of the current search
	second      bool      // claim the second-longest waiting peer (see claimWaiting)
	announced   bool      // the current search has announced itself
	waitClaims  int       // claims claimWaiting made in this search
	nextAnn     time.Time // next periodic Announce (Searching, Claiming)
	crossPeer   PeerID    // set after RefuseCrossing: its winning claim is on the way
	crossUntil  time.Time

	// StateSearching: the pairing decision (see the package doc).
	decideAt     time.Time // zero: none scheduled
	decideCap    time.Time // a debounced decision is not pushed past this
	passive      PeerID    // the partner whose claim we wait for
	passiveUntil time.Time // zero: not waiting
	odd          bool      // the odd one out: nobody to pair with until the pool changes
	oddGen       uint64    // pool.gen when we found we were odd
	oddWindow    bool      // the interest window then

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

	// Round trips of our claims (see rtt.go).
	rtt       rttSamples
	claimSent time.Time // when the outstanding claim went out
}

type waiter struct {
	from     PeerID
	claim    Claim
	deadline time.Time
}

type sentClaim struct {
	to PeerID
	id MatchID
	at time.Time // when it was sent
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
		self:  self,
		selfH: peerHash(self),
		cfg:   cfg,
		rng:   rng,
		pool:  newPool(cfg.MaxPool),
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
	case ClaimSent:
		if m.state == StateClaiming && e.To == m.target && e.ID == m.claim.ID {
			m.claimSent = m.now // the round trip counts from here
			if d := m.now.Add(m.claimTimeout()); d.Before(m.claimDeadline) {
				m.claimDeadline = d
			}
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
	s := Status{State: m.state, NextWake: m.nextWake(), PoolSize: m.poolSize(), RoundTrip: m.rtt.estimate()}
	switch m.state {
	case StateClaiming:
		s.Partner, s.MatchID, s.ClaimDeadline = m.target, m.claim.ID, m.claimDeadline
	case StateMatched:
		s.Partner, s.MatchID, s.Offerer, s.InCall = m.partner, m.matchID, m.offerer, m.inCall
	}
	s.Lonely = m.state == StateSearching && (s.PoolSize == 0 || m.odd)
	return s
}

// Blocked reports whether peer is on the block list.
func (m *Matcher) Blocked(peer PeerID) bool { return m.blocked[peer] }

// Excludes reports whether we never claim peer: it is ourselves, blocked, has
// refused us as blocked, or is a recent partner.
func (m *Matcher) Excludes(peer PeerID) bool {
	return peer == m.self || m.blocked[peer] || m.blockedBy[peer] || m.isRecent(peer)
}

// poolSize counts the pool's eligible peers in O(1): blocked peers, peers
// that refused us as blocked and ourselves never enter the pool, Step prunes
// expired entries, and recent partners (kept: they count in the pairing
// order) are marked.
func (m *Matcher) poolSize() int { return m.pool.eligible() }

// --- event handlers ---

func (m *Matcher) onStart(e Start) {
	in := NormalizeInterests(e.Interests)
	changed := !slices.Equal(in, m.interests)
	m.interests = in
	switch m.state {
	case StateIdle:
		m.startSearch(partAny)
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
		if m.announced {
			m.announce(false)
		}
		m.setState(StateIdle)
	case StateMatched:
		m.emit(EndCall{Peer: m.partner, ID: m.matchID, Reason: ReasonStop})
		if m.announced {
			m.announce(false) // again, in case the withdraw sent at the match was lost
		}
		m.leaveMatch(m.inCall, false)
	}
}

func (m *Matcher) onNext() {
	switch m.state {
	case StateIdle:
		m.startSearch(partAny)
	case StateMatched:
		m.emit(EndCall{Peer: m.partner, ID: m.matchID, Reason: ReasonNext})
		m.leaveMatch(true, true)
	}
}

func (m *Matcher) onBlock(p PeerID) {
	if p == "" || p == m.self {
		return
	}
	if m.blocked == nil {
		m.blocked = make(map[PeerID]bool)
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
	h := peerHash(p)
	if p == "" || h == m.selfH && p == m.self || len(m.blocked) > 0 && m.blocked[p] || len(m.blockedBy) > 0 && m.blockedBy[p] {
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
	var kept []string
	if len(in) > 0 {
		kept = append([]string(nil), in...)
	}
	lonely := m.state == StateSearching && (m.poolSize() == 0 || m.odd)
	if m.pool.upsert(poolEntry{h: h, peer: p, expires: exp, key: e.Key, interests: kept, connected: e.Connected}, m.isRecent) {
		m.newCandidate(lonely)
	}
}

// newCandidate: a peer joined the pool. A pending decision waits for the
// pool to settle (pushed back, up to decideCap). If we were lonely, we
// announce ourselves again: the newcomer may have joined its topic after
// our last announcement (a node just online, or one that left its shard
// for an ancestor), and pairing needs each to know the other.
func (m *Matcher) newCandidate(wasLonely bool) {
	gap := max(m.jitter(), m.cfg.AnnounceInterval/10)
	if wasLonely && !m.now.Before(m.nextAnn.Add(gap-m.cfg.AnnounceInterval)) {
		m.announce(true)
	}
	if m.state != StateSearching || m.decideAt.IsZero() {
		return
	}
	if t := m.now.Add(m.settle()); t.After(m.decideAt) {
		m.decideAt = t
		if m.decideAt.After(m.decideCap) {
			m.decideAt = m.decideCap
		}
	}
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
	if m.state != StateMatched && m.isRecent(from) {
		m.reply(from, c.ID, RefuseBusy) // never pair with a recent partner
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
		m.rtt.add(m.now.Sub(m.claimSent))
		switch r.Verdict {
		case Accept:
			m.enterMatch(m.target, m.claim.ID, true)
		case RefuseCrossing:
			p := m.target
			m.claimFailed()
			if m.state == StateSearching {
				m.crossPeer, m.crossUntil = p, m.now.Add(m.claimTimeout())
			}
		case RefuseBlocked:
			if m.blockedBy == nil {
				m.blockedBy = make(map[PeerID]bool)
			}
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
	if m.state == StateMatched && m.offerer && from == m.partner && r.ID == m.matchID {
		return // duplicate
	}
	for i, a := range m.abandoned {
		if a.to == from && a.id == r.ID && a.to != "" {
			if !a.at.IsZero() { // a late answer still tells how long answers take
				m.rtt.add(m.now.Sub(a.at))
				m.abandoned[i].at = time.Time{}
			}
			if r.Verdict == Accept {
				m.abandoned[i] = sentClaim{}
				if m.state == StateSearching && !m.Excludes(from) {
					// Still free: the match it accepted is ours to take,
					// instead of two searches started again.
					m.enterMatch(from, r.ID, true)
					return
				}
				m.emit(EndCall{Peer: from, ID: r.ID, Reason: ReasonAbandoned})
			}
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
		m.crossPeer = ""
		m.decideAt, m.decideCap, m.passive, m.passiveUntil, m.odd = time.Time{}, time.Time{}, "", time.Time{}, false
	}
	if s != StateClaiming {
		m.target, m.claim, m.claimDeadline = "", Claim{}, time.Time{}
	}
	if s != StateMatched {
		m.partner, m.matchID, m.offerer, m.inCall, m.setupDeadline = "", MatchID{}, false, false, time.Time{}
	}
	m.emit(StateChanged{From: from, To: s})
}

// part says which of two waiting peers a search claims (see claimWaiting).
type part uint8

const (
	partAny    part = iota // either, drawn from the pairing key
	partFirst              // the longest waiting
	partSecond             // the next
)

// startSearch enters StateSearching; p picks which waiting peer we claim
// (see claimWaiting). A search that claims a waiting peer at once
// announces itself only if that claim fails: most such claims succeed, and
// a peer matched before anyone heard of it needs no withdraw either.
func (m *Matcher) startSearch(p part) {
	m.setState(StateSearching)
	m.searchSince = m.now
	m.crossPeer = ""
	m.decideAt, m.decideCap, m.passive, m.passiveUntil, m.odd = time.Time{}, time.Time{}, "", time.Time{}, false
	m.key = pairingKey(m.now, m.rng)
	m.second = p == partSecond || p == partAny && m.key&2 != 0
	m.announced, m.waitClaims = false, 0
	if !m.claimWaiting(m.inInterestWindow()) {
		m.announce(true)
	}
}

func (m *Matcher) enterMatch(peer PeerID, id MatchID, offerer bool) {
	m.refuseWaiter(RefuseBusy)
	if m.announced {
		m.announce(false)
	}
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
		// The partners of a call search again together: one claims the
		// longest-waiting peer, the other the next (see claimWaiting).
		part := partSecond
		if m.offerer {
			part = partFirst
		}
		m.startSearch(part)
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
// gave up is taken if we are still searching, else answered with
// EndCall{ReasonAbandoned}.
func (m *Matcher) abandon() {
	m.abandoned[m.abandonAt] = sentClaim{to: m.target, id: m.claim.ID, at: m.claimSent}
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
	switch {
	case m.state == StateSearching && (!m.announced || !now.Before(m.nextAnn)):
		m.announce(true)
	case m.state == StateClaiming && m.announced && !now.Before(m.nextAnn):
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
	if m.odd {
		if m.pool.gen == m.oddGen && m.inInterestWindow() == m.oddWindow {
			return // nobody to pair with until the pool changes
		}
		m.odd = false
	}
	if !m.passiveUntil.IsZero() {
		if now.Before(m.passiveUntil) {
			if m.passive == "" || m.candidateNow(m.passive) {
				return // the partner's claim is still due
			}
			m.passive, m.passiveUntil = "", time.Time{} // the partner left: pair again
		} else {
			p := m.passive
			m.passive, m.passiveUntil = "", time.Time{}
			if p == "" { // an orphan: nobody claimed us, claim anyone
				if q, ok := m.pick(); ok {
					m.sendClaim(q)
					return
				}
			} else if m.candidateNow(p) {
				m.sendClaim(p) // its claim never came: claim it
				return
			}
		}
	}
	if m.decideAt.IsZero() {
		if !m.hasCandidate() {
			return // lonely: a presence will bring us back
		}
		if m.claimWaiting(m.inInterestWindow()) {
			return
		}
		m.decideAt = now.Add(m.settle())
		m.decideCap = now.Add(2 * m.jitter())
	}
	if now.Before(m.decideAt) {
		return
	}
	m.decideAt, m.decideCap = time.Time{}, time.Time{}
	m.decide()
}

// settle draws the delay before a pairing decision: [ClaimJitter/2,
// ClaimJitter), ClaimJitter as the round trips measured make it (jitter).
func (m *Matcher) settle() time.Duration {
	j := m.jitter()
	if j <= 1 {
		return j
	}
	return j/2 + time.Duration(m.rng.Int64N(int64(j-j/2)))
}

// decide pairs the searching peers we know and ourselves by key (then peer
// id), adjacent in that order: (0,1), (2,3), ... This order counts every
// searching peer in the pool, also those we may not claim (recent partners;
// during the interest window, those that share no interest are left out),
// so that it is the same for every node that heard the same presences. Then:
//
//   - if our partner is a candidate, the lower of the pair claims the higher
//     at once, and the higher waits PairWait for that claim, then claims
//     itself; but if the higher started later (claimWaiting), the higher
//     claims and the lower waits;
//   - if we may not claim our partner (it is a recent partner: it cannot
//     claim us either), we are orphans: the lower of us claims the odd one
//     out of the order, if there is one and we may claim it; otherwise we
//     wait PairWait for a claim (another orphan's), then claim a candidate
//     at random;
//   - the odd one out waits, Lonely, until the pool changes (a newcomer
//     pairs with it, or an orphan claims it).
//
// Peers that agree on the order agree on the pairs, so a claim rarely meets
// a claiming or matched target.
func (m *Matcher) decide() {
	window := m.inInterestWindow()
	if m.claimWaiting(window) {
		return
	}
	var pred, succ, top *poolEntry
	rank, n := 0, 0
	for i := range m.pool.entries {
		e := &m.pool.entries[i]
		if window && !sharesInterest(m.interests, e.interests) {
			continue
		}
		n++
		if top == nil || pairLess(top.key, top.peer, e.key, e.peer) {
			top = e
		}
		if pairLess(e.key, e.peer, m.key, m.self) {
			rank++
			if pred == nil || pairLess(pred.key, pred.peer, e.key, e.peer) {
				pred = e
			}
		} else if succ == nil || pairLess(e.key, e.peer, succ.key, succ.peer) {
			succ = e
		}
	}
	partner, lower := pred, false
	if rank%2 == 0 {
		partner, lower = succ, true
	}
	switch {
	case n == 0:
	case partner == nil: // the odd one out
		m.lonelyWait(window)
	case !m.candidate(partner, window): // orphans
		if odd := top; (n+1)%2 == 1 && lower && odd != partner && m.candidate(odd, window) && !m.waitsFor(odd) {
			m.sendClaim(odd.peer)
			return
		}
		// Wait for a claim from another orphan; then claim one at random.
		m.passive, m.passiveUntil = "", m.now.Add(m.pairWait())
	case lower && !m.waitsFor(partner):
		m.sendClaim(partner.peer)
	case m.pairWait() <= 0:
		m.sendClaim(partner.peer)
	default:
		m.passive, m.passiveUntil = partner.peer, m.now.Add(m.pairWait())
	}
}

// claimWaiting claims, at once, a candidate whose search started before
// ours (in an earlier millisecond), if there is one, and if this search has
// not had maxWaitClaims such claims refused: such a peer has paired already
// if it could, so it waits for a newcomer. The order pairs it with the
// newcomers after it, and the newcomer claims, not it: the newcomer heard
// its presence long ago, while it has yet to hear the newcomer's. Two
// partners whose call just ended search again in the same moment and may
// not pair with each other: the offerer claims the longest waiting
// candidate, the answerer the next, so that two waiting peers (two such
// partners before them) are both claimed at once. A first search draws its
// part at random.
func (m *Matcher) claimWaiting(window bool) bool {
	if m.waitClaims >= maxWaitClaims {
		return false
	}
	var top [waitChoice]*poolEntry // the longest waiting, in pairing order
	n := 0
	for i := range m.pool.entries {
		e := &m.pool.entries[i]
		if !m.candidate(e, window) || !m.waitedFor(e) {
			continue
		}
		j := n
		for j > 0 && pairLess(e.key, e.peer, top[j-1].key, top[j-1].peer) {
			j--
		}
		if j == waitChoice {
			continue
		}
		if n < waitChoice {
			n++
		}
		copy(top[j+1:n], top[j:n-1])
		top[j] = e
	}
	if n == 0 {
		return false
	}
	m.waitClaims++
	m.sendClaim(pickWaiting(top[:n], m.second).peer)
	return true
}

// waitChoice is how many of the longest waiting a newcomer chooses among.
const waitChoice = 4

// pickWaiting chooses whom a newcomer claims among the longest waiting
// (top, in pairing order): the first, or the second if second is set (so
// that the two partners of a call just ended claim different peers), unless
// that one needs a dial and another of top does not. Then the first
// connected one from there on, else the first connected one before it. A
// claim that dials waits for the dial: at 200 nodes on this machine a busy
// refusal took p50 227 ms over a new connection against 70 ms over one
// already there, and half of all claims dialled.
func pickWaiting(top []*poolEntry, second bool) *poolEntry {
	from := 0
	if second && len(top) > 1 {
		from = 1
	}
	for i := range top {
		if e := top[(from+i)%len(top)]; e.connected {
			return e
		}
	}
	return top[from]
}

// maxWaitClaims bounds the claims claimWaiting makes in one search. Presence
// that says a peer stopped searching (it was matched) can take a second or
// more to cross a loaded network, and every search that starts meanwhile
// would claim it: after two refusals a search waits to be claimed.
const maxWaitClaims = 2

// waitedFor reports whether e's search started before ours (by the start
// times, in milliseconds, of the pairing keys).
func (m *Matcher) waitedFor(e *poolEntry) bool {
	return keyMillis(e.key) < keyMillis(m.key)
}

// waitsFor reports whether we are the one waiting for e: its search started
// after ours, so it claims us (claimWaiting).
func (m *Matcher) waitsFor(e *poolEntry) bool {
	return keyMillis(m.key) < keyMillis(e.key)
}

func keyMillis(k uint64) uint64 { return k >> 20 }

// lonelyWait: nobody to pair with until the pool (or the interest window)
// changes.
func (m *Matcher) lonelyWait(window bool) {
	m.odd, m.oddGen, m.oddWindow = true, m.pool.gen, window
}

// pairingKey is the key of a search that starts at now: the start time in
// milliseconds, then 20 random bits. Searches pair in the order they
// started, so that a newcomer only adds to the end of everyone's order and
// the pairs already formed stay as they are; searches that start in the
// same millisecond (everyone pressing Start at once) pair at random.
func pairingKey(now time.Time, rng *rand.Rand) uint64 {
	ms := uint64(max(0, now.UnixMilli()))
	return ms<<20 | rng.Uint64()>>44 | 1
}

// pairLess orders peers for pairing: by key, then by peer id.
func pairLess(ka uint64, a PeerID, kb uint64, b PeerID) bool {
	if ka != kb {
		return ka < kb
	}
	return a < b
}

// candidateNow reports whether p may be claimed now.
func (m *Matcher) candidateNow(p PeerID) bool {
	e := m.pool.get(p)
	return e != nil && m.candidate(e, m.inInterestWindow())
}

func (m *Matcher) sendClaim(p PeerID) {
	var id MatchID
	binary.BigEndian.PutUint64(id[:8], m.rng.Uint64())
	binary.BigEndian.PutUint64(id[8:], m.rng.Uint64())
	c := Claim{ID: id, Ticket: m.rng.Uint64()}
	m.setState(StateClaiming)
	m.target, m.claim, m.claimDeadline = p, c, m.now.Add(m.claimTimeout()+m.cfg.ConnectTimeout)
	m.claimSent = m.now
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
		switch {
		case m.crossPeer != "":
			at(m.crossUntil)
		case !m.passiveUntil.IsZero():
			at(m.passiveUntil)
		default:
			at(m.decideAt)
		}
		if end := m.searchSince.Add(m.cfg.InterestWait); len(m.interests) > 0 && m.now.Before(end) {
			at(end)
		}
	case StateClaiming:
		if m.announced {
			at(m.nextAnn)
		}
		at(m.claimDeadline)
	case StateMatched:
		if !m.inCall {
			at(m.setupDeadline)
		}
	}
	return t
}

// --- pool choice ---

// eligible: a pool entry we may claim. Blocked peers, peers that refused us
// as blocked and ourselves never enter the pool.
func (m *Matcher) eligible(e *poolEntry) bool {
	return !e.recent && e.expires.After(m.now)
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
	if !window {
		return m.poolSize() > 0
	}
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
	var in []string
	if len(m.interests) > 0 {
		in = append(in, m.interests...)
	}
	m.emit(Announce{
		Searching: searching,
		Interests: in,
		Expires:   m.now.Add(m.cfg.PresenceTTL),
		Key:       m.key,
	})
	if searching {
		m.nextAnn = m.now.Add(m.cfg.AnnounceInterval)
		m.announced = true
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
	m.pool.setRecent(p, true)
	if over := len(m.recent) - m.cfg.RecentPartners; over > 0 {
		for _, q := range m.recent[:over] {
			m.pool.setRecent(q, false)
		}
		m.recent = append(m.recent[:0], m.recent[over:]...)
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
