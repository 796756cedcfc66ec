package simnet

import (
	"encoding/binary"
	"math/rand/v2"
	"time"

	"serendip/discovery"
)

// machine is what the simulator runs on every node: the Matcher, or the
// baseline below.
type machine interface {
	Step(now time.Time, ev discovery.Event) []discovery.Action
	Status() discovery.Status
	Excludes(p discovery.PeerID) bool
}

// BaselineRound is how often a baseline node picks a new peer.
const BaselineRound = 500 * time.Millisecond

// baseline is the descendant design, run for comparison on the same
// workload: every searching node picks a peer at random among all searching
// nodes every BaselineRound and claims it; a match happens only when two
// picks are mutual (the smaller claim wins, as in a Matcher crossing). Its
// presence is the single topic of that design: the simulator counts the
// bytes of every announcement as delivered to every node, and gives its
// pick a perfect view of who is searching (optimistic for the baseline).
type baseline struct {
	self discovery.PeerID
	cfg  discovery.Config
	rng  *rand.Rand
	pick func() (discovery.PeerID, bool) // a random searching peer, not self
	pool func() int                      // how many others are searching

	now   time.Time
	acts  []discovery.Action
	state discovery.State

	nextRound, nextAnn time.Time
	target             discovery.PeerID // the current pick
	claim              discovery.Claim
	sent               [8]sentClaim // recent claims, to call off a late accept
	sentAt             int

	partner       discovery.PeerID
	matchID       discovery.MatchID
	offerer       bool
	inCall        bool
	setupDeadline time.Time

	recent  []discovery.PeerID
	blocked map[discovery.PeerID]bool
}

type sentClaim struct {
	to discovery.PeerID
	id discovery.MatchID
}

func newBaseline(self discovery.PeerID, cfg discovery.Config, rng *rand.Rand) *baseline {
	return &baseline{self: self, cfg: cfg, rng: rng, blocked: map[discovery.PeerID]bool{}}
}

func (b *baseline) Excludes(p discovery.PeerID) bool {
	if p == b.self || b.blocked[p] {
		return true
	}
	for _, q := range b.recent {
		if q == p {
			return true
		}
	}
	return false
}

func (b *baseline) Status() discovery.Status {
	s := discovery.Status{State: b.state, NextWake: b.nextWake()}
	if b.state == discovery.StateMatched {
		s.Partner, s.MatchID, s.Offerer, s.InCall = b.partner, b.matchID, b.offerer, b.inCall
	}
	if b.state == discovery.StateSearching {
		s.PoolSize = b.pool()
		s.Lonely = s.PoolSize == 0
	}
	return s
}

func (b *baseline) nextWake() time.Time {
	switch b.state {
	case discovery.StateSearching:
		if b.nextAnn.Before(b.nextRound) {
			return b.nextAnn
		}
		return b.nextRound
	case discovery.StateMatched:
		if !b.inCall {
			return b.setupDeadline
		}
	}
	return time.Time{}
}

func (b *baseline) Step(now time.Time, ev discovery.Event) []discovery.Action {
	b.now = now
	switch e := ev.(type) {
	case discovery.Start:
		if b.state == discovery.StateIdle {
			b.search()
			b.nextRound = now.Add(time.Duration(b.rng.Int64N(int64(BaselineRound))))
		}
	case discovery.Stop:
		switch b.state {
		case discovery.StateSearching:
			b.announce(false)
		case discovery.StateMatched:
			b.emit(discovery.EndCall{Peer: b.partner, ID: b.matchID, Reason: discovery.ReasonStop})
		}
		b.set(discovery.StateIdle)
	case discovery.Next:
		switch b.state {
		case discovery.StateIdle:
			b.search()
		case discovery.StateMatched:
			b.emit(discovery.EndCall{Peer: b.partner, ID: b.matchID, Reason: discovery.ReasonNext})
			b.leave(true, true)
		}
	case discovery.Block:
		b.blocked[e.Peer] = true
		if b.state == discovery.StateMatched && b.partner == e.Peer {
			b.emit(discovery.EndCall{Peer: e.Peer, ID: b.matchID, Reason: discovery.ReasonBlocked})
			b.leave(true, true)
		}
	case discovery.ClaimReceived:
		b.onClaim(e.From, e.Claim)
	case discovery.ReplyReceived:
		b.onReply(e.From, e.Reply)
	case discovery.CallStarted:
		if b.state == discovery.StateMatched && e.ID == b.matchID {
			b.inCall = true
		}
	case discovery.CallEnded:
		if b.state == discovery.StateMatched && e.ID == b.matchID {
			b.leave(b.inCall, e.Rematch)
		}
	}
	b.advance()
	acts := b.acts
	b.acts = nil
	return acts
}

func (b *baseline) onClaim(from discovery.PeerID, c discovery.Claim) {
	reply := func(v discovery.Verdict) {
		b.emit(discovery.SendReply{To: from, Reply: discovery.Reply{ID: c.ID, Verdict: v}})
	}
	switch {
	case b.blocked[from]:
		reply(discovery.RefuseBlocked)
	case b.state == discovery.StateIdle:
		reply(discovery.RefuseNotSearching)
	case b.state == discovery.StateMatched:
		if !b.offerer && from == b.partner && c.ID == b.matchID {
			reply(discovery.Accept)
		} else {
			reply(discovery.RefuseBusy)
		}
	case from != b.target: // not mutual
		reply(discovery.RefuseBusy)
	case c.Less(b.claim): // mutual, theirs wins
		reply(discovery.Accept)
		b.match(from, c.ID, false)
	default: // mutual, ours wins: our claim is accepted on their side
		reply(discovery.RefuseCrossing)
	}
}

func (b *baseline) onReply(from discovery.PeerID, r discovery.Reply) {
	if r.Verdict != discovery.Accept {
		return
	}
	if b.state == discovery.StateSearching && from == b.target && r.ID == b.claim.ID {
		b.match(from, r.ID, true)
		return
	}
	if b.state == discovery.StateMatched && b.offerer && from == b.partner && r.ID == b.matchID {
		return // duplicate
	}
	for i, s := range b.sent {
		if s.to == from && s.id == r.ID && s.to != "" {
			b.sent[i] = sentClaim{}
			b.emit(discovery.EndCall{Peer: from, ID: r.ID, Reason: discovery.ReasonAbandoned})
			return
		}
	}
}

func (b *baseline) advance() {
	if b.state == discovery.StateMatched && !b.inCall && !b.now.Before(b.setupDeadline) {
		b.emit(discovery.EndCall{Peer: b.partner, ID: b.matchID, Reason: discovery.ReasonSetupTimeout})
		b.leave(false, true)
	}
	if b.state != discovery.StateSearching {
		return
	}
	if !b.now.Before(b.nextAnn) {
		b.announce(true)
	}
	if b.now.Before(b.nextRound) {
		return
	}
	for !b.nextRound.After(b.now) {
		b.nextRound = b.nextRound.Add(BaselineRound)
	}
	b.target, b.claim = "", discovery.Claim{}
	p, ok := b.pick()
	if !ok || b.Excludes(p) {
		return
	}
	var id discovery.MatchID
	binary.BigEndian.PutUint64(id[:8], b.rng.Uint64())
	binary.BigEndian.PutUint64(id[8:], b.rng.Uint64())
	b.target, b.claim = p, discovery.Claim{ID: id, Ticket: b.rng.Uint64()}
	b.sent[b.sentAt] = sentClaim{to: p, id: id}
	b.sentAt = (b.sentAt + 1) % len(b.sent)
	b.emit(discovery.SendClaim{To: p, Claim: b.claim})
}

func (b *baseline) search() {
	b.set(discovery.StateSearching)
	b.announce(true)
	if b.nextRound.Before(b.now) {
		b.nextRound = b.now
	}
}

func (b *baseline) match(p discovery.PeerID, id discovery.MatchID, offerer bool) {
	b.announce(false)
	b.set(discovery.StateMatched)
	b.partner, b.matchID, b.offerer, b.inCall = p, id, offerer, false
	b.setupDeadline = b.now.Add(b.cfg.SetupTimeout)
	b.emit(discovery.Matched{Peer: p, ID: id, Offerer: offerer})
}

func (b *baseline) leave(partnered, rematch bool) {
	if partnered && b.cfg.RecentPartners > 0 {
		b.recent = append(b.recent, b.partner)
		if len(b.recent) > b.cfg.RecentPartners {
			b.recent = b.recent[1:]
		}
	}
	if rematch {
		b.search()
	} else {
		b.set(discovery.StateIdle)
	}
}

func (b *baseline) set(s discovery.State) {
	if s == b.state {
		return
	}
	from := b.state
	b.state = s
	b.target, b.claim = "", discovery.Claim{}
	if s != discovery.StateMatched {
		b.partner, b.matchID, b.offerer, b.inCall = "", discovery.MatchID{}, false, false
	}
	b.emit(discovery.StateChanged{From: from, To: s})
}

func (b *baseline) announce(searching bool) {
	b.emit(discovery.Announce{Searching: searching, Expires: b.now.Add(b.cfg.PresenceTTL)})
	if searching {
		b.nextAnn = b.now.Add(b.cfg.AnnounceInterval)
	}
}

func (b *baseline) emit(a discovery.Action) { b.acts = append(b.acts, a) }
