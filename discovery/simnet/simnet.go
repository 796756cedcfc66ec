// Package simnet runs many discovery.Matchers over a deterministic in-memory
// network: one priority queue of timed deliveries, a seeded random source for
// latency, loss and reordering, Ticks at each matcher's NextWake, and the
// call layer reduced to offer, answer and bye messages. After every step it
// checks the matcher invariants of DESIGN.md and stops at the first
// violation. The same Config and seed replay the same run exactly.
//
// The model, message by message:
//
//   - Announce: a PresenceSeen to every other live node, each copy with its
//     own latency and loss, filtered as the node's topic validator would
//     (expired, or not newer than the last seq from that sender: dropped).
//   - SendClaim: a ClaimReceived at the target; a claim to a crashed node
//     fails (ClaimFailed) after a round trip.
//   - SendReply: a ReplyReceived at the claimer.
//   - Matched (offerer): an offer to the partner. If the partner holds the
//     same match it answers, and when the answer arrives both sides get
//     CallStarted; otherwise the partner answers with a bye.
//   - EndCall: a bye, which the partner's node turns into CallEnded. Rematch
//     is true when the call never started (a failed setup must not leave a
//     searching user idle) and Config.Rematch otherwise.
//   - A crash silences a node for good. Each live node hears PeerGone for it
//     with probability 1/2; a partner in a call notices after NoticeDelay.
//
// Loss (Config.Loss, Config.SilentLoss) applies to every message.
package simnet

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"serendip/discovery"
)

// Config describes one simulated run.
type Config struct {
	Nodes   int
	Seed    uint64
	Matcher discovery.Config

	// Every message takes a latency drawn uniformly from [MinLatency,
	// MaxLatency]; a spread between the two reorders messages.
	MinLatency, MaxLatency time.Duration
	// Loss is the probability that one message is lost. A lost presence
	// just vanishes (gossip). A lost claim, reply, offer, answer or bye resets
	// its stream and both ends notice after a latency (the claimer gets
	// ClaimFailed, a node whose Accept or signalling failed gets CallEnded),
	// unless SilentLoss: then it vanishes too, as on a half-open connection,
	// and only timeouts recover.
	Loss       float64
	SilentLoss bool

	// CallLength: zero keeps calls up until a crash; otherwise each call
	// lasts a random time in [CallLength/2, 3*CallLength/2) and then one side,
	// chosen at random, presses Next.
	CallLength time.Duration
	// Rematch: a node whose partner ended a started call searches again (a
	// bot in auto mode) instead of going idle.
	Rematch bool
	// NoticeDelay: how long a node in a call takes to notice that its partner
	// crashed, and the longest delay before a PeerGone. Zero means 3s.
	NoticeDelay time.Duration
}

// Stats counts what happened in a run.
type Stats struct {
	Claims      int // SendClaim actions
	Matches     int // Matched actions (one per side)
	Calls       int // calls started on both sides
	HalfMatches int // matches left before their call started
	Abandoned   int // late accepts answered with EndCall{ReasonAbandoned}
	Messages    int // messages sent, one per receiver
	Lost        int // messages lost
	Crashes     int
	Steps       int // matcher steps
}

// Violation is an invariant broken during a run.
type Violation struct {
	At   time.Duration // since the start of the run
	Node int
	What string
}

func (v *Violation) Error() string {
	return fmt.Sprintf("simnet: at %v, node %d: %s", v.At, v.Node, v.What)
}

// Net is one simulated network.
type Net struct {
	cfg   Config
	rng   *rand.Rand
	start time.Time
	now   time.Time
	queue queue
	seq   uint64
	nodes []*node
	index map[discovery.PeerID]int
	// holders of each match id now in StateMatched
	holders map[discovery.MatchID][]int
	pairs   map[[2]int]int
	stats   Stats
	err     error
	trace   func(i int, ev discovery.Event, acts []discovery.Action)
}

type node struct {
	id     discovery.PeerID
	m      *discovery.Matcher
	alive  bool
	seqs   *discovery.SeqTracker
	pseq   uint64
	wake   time.Time // time of the pending Tick; zero if none
	st     discovery.Status
	since  time.Time // when st's (State, Partner, MatchID) began
	inCall bool      // st.InCall was seen for the current match
	calls  int
}

// auditEvery is the period of the global invariant sweep.
const auditEvery = 100 * time.Millisecond

// New builds a network of cfg.Nodes idle matchers.
func New(cfg Config) (*Net, error) {
	if cfg.Nodes < 1 {
		return nil, errors.New("simnet: need at least one node")
	}
	if err := cfg.Matcher.Validate(); err != nil {
		return nil, err
	}
	if cfg.MinLatency < 0 || cfg.MaxLatency < cfg.MinLatency {
		return nil, fmt.Errorf("simnet: bad latency range [%v, %v]", cfg.MinLatency, cfg.MaxLatency)
	}
	if cfg.Loss < 0 || cfg.Loss >= 1 {
		return nil, fmt.Errorf("simnet: loss %v not in [0, 1)", cfg.Loss)
	}
	if cfg.NoticeDelay == 0 {
		cfg.NoticeDelay = 3 * time.Second
	}
	start := time.Unix(1_700_000_000, 0)
	n := &Net{
		cfg:     cfg,
		rng:     rand.New(rand.NewPCG(cfg.Seed, 0x5e4e4d1b)),
		start:   start,
		now:     start,
		index:   make(map[discovery.PeerID]int),
		holders: make(map[discovery.MatchID][]int),
		pairs:   make(map[[2]int]int),
	}
	ttl := cfg.Matcher.PresenceTTL + time.Second
	for i := 0; i < cfg.Nodes; i++ {
		id := discovery.PeerID(fmt.Sprintf("n%03d", i))
		m, err := discovery.NewMatcher(id, cfg.Matcher, rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1)))
		if err != nil {
			return nil, err
		}
		n.nodes = append(n.nodes, &node{id: id, m: m, alive: true, seqs: discovery.NewSeqTracker(0, ttl), since: start})
		n.index[id] = i
	}
	n.after(auditEvery, n.audit)
	return n, nil
}

// Len returns the number of nodes.
func (n *Net) Len() int { return len(n.nodes) }

// Peer returns node i's PeerID.
func (n *Net) Peer(i int) discovery.PeerID { return n.nodes[i].id }

// Status returns node i's matcher status after its latest step.
func (n *Net) Status(i int) discovery.Status { return n.nodes[i].st }

// Alive reports whether node i has not crashed.
func (n *Net) Alive(i int) bool { return n.nodes[i].alive }

// Calls returns how many calls node i has started.
func (n *Net) Calls(i int) int { return n.nodes[i].calls }

// Pairs returns how many calls each pair of nodes (lower index first) had.
func (n *Net) Pairs() map[[2]int]int { return n.pairs }

// Stats returns the counters so far.
func (n *Net) Stats() Stats { return n.stats }

// Elapsed returns the simulated time since the start.
func (n *Net) Elapsed() time.Duration { return n.now.Sub(n.start) }

// Start makes node i press Start with interests at offset at from now.
func (n *Net) Start(i int, at time.Duration, interests []string) {
	n.after(at, func() { n.step(i, discovery.Start{Interests: interests}) })
}

// Stop makes node i press Stop at offset at.
func (n *Net) Stop(i int, at time.Duration) { n.after(at, func() { n.step(i, discovery.Stop{}) }) }

// Next makes node i press Next at offset at.
func (n *Net) Next(i int, at time.Duration) { n.after(at, func() { n.step(i, discovery.Next{}) }) }

// Block makes node i block node j at offset at.
func (n *Net) Block(i, j int, at time.Duration) {
	n.after(at, func() { n.step(i, discovery.Block{Peer: n.nodes[j].id}) })
}

// Crash stops node i for good at offset at.
func (n *Net) Crash(i int, at time.Duration) { n.after(at, func() { n.crash(i) }) }

// Run processes events for at most d of simulated time, or until until
// (checked after every event, may be nil) returns true. It reports whether
// until was met, and the first invariant violation.
func (n *Net) Run(d time.Duration, until func(*Net) bool) (bool, error) {
	end := n.now.Add(d)
	for n.err == nil && n.queue.Len() > 0 && !n.queue[0].at.After(end) {
		it := heap.Pop(&n.queue).(*item)
		n.now = it.at
		it.fn()
		if n.err == nil && until != nil && until(n) {
			return true, nil
		}
	}
	if n.err != nil {
		return false, n.err
	}
	n.now = end
	return false, nil
}

// Settled reports whether the network is at rest: no live node is claiming
// or matched without a call, and at most one live node is searching.
func (n *Net) Settled() bool {
	searching := 0
	for _, nd := range n.nodes {
		if !nd.alive {
			continue
		}
		switch nd.st.State {
		case discovery.StateClaiming:
			return false
		case discovery.StateMatched:
			if !nd.st.InCall {
				return false
			}
		case discovery.StateSearching:
			if searching++; searching > 1 {
				return false
			}
		}
	}
	return true
}

// --- the engine ---

func (n *Net) after(d time.Duration, fn func()) {
	n.seq++
	heap.Push(&n.queue, &item{at: n.now.Add(d), seq: n.seq, fn: fn})
}

func (n *Net) latency() time.Duration {
	lo, hi := n.cfg.MinLatency, n.cfg.MaxLatency
	if hi == lo {
		return lo
	}
	return lo + time.Duration(n.rng.Int64N(int64(hi-lo)+1))
}

// send delivers a gossip message after a latency unless it is lost; it
// reports whether the message went out.
func (n *Net) send(deliver func()) bool { return n.stream(deliver, nil) }

// stream delivers a message on a stream after a latency unless it is lost. A
// lost message resets its stream: reset runs after a latency (both ends
// notice), unless SilentLoss.
func (n *Net) stream(deliver, reset func()) bool {
	n.stats.Messages++
	if n.cfg.Loss > 0 && n.rng.Float64() < n.cfg.Loss {
		n.stats.Lost++
		if reset != nil && !n.cfg.SilentLoss {
			n.after(n.latency(), reset)
		}
		return false
	}
	n.after(n.latency(), deliver)
	return true
}

func (n *Net) step(i int, ev discovery.Event) {
	nd := n.nodes[i]
	if !nd.alive || n.err != nil {
		return
	}
	n.stats.Steps++
	acts := nd.m.Step(n.now, ev)
	n.observe(i)
	if n.trace != nil {
		n.trace(i, ev, acts)
	}
	for _, a := range acts {
		n.carry(i, a)
	}
	if w := nd.st.NextWake; !w.IsZero() && !w.Equal(nd.wake) {
		nd.wake = w
		n.after(w.Sub(n.now), func() {
			if nd.wake.Equal(w) {
				nd.wake = time.Time{}
				n.step(i, discovery.Tick{})
			}
		})
	}
}

func (n *Net) carry(i int, a discovery.Action) {
	nd := n.nodes[i]
	switch a := a.(type) {
	case discovery.Announce:
		nd.pseq++
		seq, seen := nd.pseq, a.Presence(nd.pseq, nil).Seen(nd.id)
		for j, to := range n.nodes {
			if j == i || !to.alive {
				continue
			}
			n.send(func() {
				if !a.Expires.After(n.now) || !to.seqs.Accept(nd.id, seq, n.now) {
					return
				}
				n.step(j, seen)
			})
		}
	case discovery.SendClaim:
		n.stats.Claims++
		j := n.index[a.To]
		fail := func() { n.step(i, discovery.ClaimFailed{To: a.To, ID: a.Claim.ID}) }
		n.stream(func() {
			if !n.nodes[j].alive {
				n.after(n.latency(), fail) // no connection
				return
			}
			n.step(j, discovery.ClaimReceived{From: nd.id, Claim: a.Claim})
		}, fail)
	case discovery.SendReply:
		j, id := n.index[a.To], a.Reply.ID
		n.stream(func() { n.step(j, discovery.ReplyReceived{From: nd.id, Reply: a.Reply}) }, func() {
			n.step(j, discovery.ClaimFailed{To: nd.id, ID: id})
			if a.Reply.Verdict == discovery.Accept { // the target's node sees its write fail
				n.step(i, discovery.CallEnded{ID: id, Rematch: true})
			}
		})
	case discovery.Matched:
		n.stats.Matches++
		if a.Offerer {
			j := n.index[a.Peer]
			n.stream(func() { n.offer(i, j, a.ID) }, func() { n.signalFailed(i, j, a.ID) })
		}
	case discovery.EndCall:
		if a.Reason == discovery.ReasonAbandoned {
			n.stats.Abandoned++
		}
		j := n.index[a.Peer]
		bye := func() { n.bye(j, a.ID) }
		if !n.stream(bye, bye) && n.cfg.SilentLoss {
			n.notice(j, a.ID) // the bye is lost, but a call in progress fails
		}
	}
}

// offer from offerer i arrives at answerer j.
func (n *Net) offer(i, j int, id discovery.MatchID) {
	to := n.nodes[j]
	if !to.alive {
		return
	}
	if st := to.st; st.State != discovery.StateMatched || st.Partner != n.nodes[i].id || st.MatchID != id || st.Offerer {
		bye := func() { n.bye(i, id) }
		n.stream(bye, bye)
		return
	}
	// The answer; when it arrives ICE connects and both sides are in the call.
	n.stream(func() {
		n.step(i, discovery.CallStarted{ID: id})
		n.step(j, discovery.CallStarted{ID: id})
		if n.nodes[i].inCall && n.nodes[i].st.MatchID == id && n.nodes[j].inCall && n.nodes[j].st.MatchID == id {
			n.callStarted(i, j, id)
		}
	}, func() { n.signalFailed(i, j, id) })
}

// signalFailed: the signalling stream of match id between i and j was reset;
// both nodes give up the call.
func (n *Net) signalFailed(i, j int, id discovery.MatchID) {
	n.bye(i, id)
	n.bye(j, id)
}

func (n *Net) callStarted(i, j int, id discovery.MatchID) {
	n.stats.Calls++
	n.nodes[i].calls++
	n.nodes[j].calls++
	n.pairs[[2]int{min(i, j), max(i, j)}]++
	if n.cfg.CallLength <= 0 {
		return
	}
	length := n.cfg.CallLength/2 + time.Duration(n.rng.Int64N(int64(n.cfg.CallLength)))
	who := i
	if n.rng.IntN(2) == 0 {
		who = j
	}
	n.after(length, func() {
		if st := n.nodes[who].st; st.State == discovery.StateMatched && st.MatchID == id {
			n.step(who, discovery.Next{})
		}
	})
}

// bye for match id arrives at node j.
func (n *Net) bye(j int, id discovery.MatchID) {
	st := n.nodes[j].st
	rematch := n.cfg.Rematch || !(st.InCall && st.MatchID == id)
	n.step(j, discovery.CallEnded{ID: id, Rematch: rematch})
}

// notice: node j, in a call for match id whose other end has gone, notices
// after NoticeDelay (ICE failure) and reports CallEnded. A match still in setup
// is left to SetupTimeout.
func (n *Net) notice(j int, id discovery.MatchID) {
	n.after(n.cfg.NoticeDelay, func() {
		if st := n.nodes[j].st; st.State == discovery.StateMatched && st.MatchID == id && st.InCall {
			n.step(j, discovery.CallEnded{ID: id, Rematch: n.cfg.Rematch})
		}
	})
}

func (n *Net) crash(i int) {
	nd := n.nodes[i]
	if !nd.alive {
		return
	}
	n.stats.Crashes++
	nd.alive = false
	if nd.st.State == discovery.StateMatched {
		n.unhold(nd.st.MatchID, i)
	}
	for j, other := range n.nodes {
		if !other.alive {
			continue
		}
		if st := other.st; st.State == discovery.StateMatched && st.Partner == nd.id {
			n.notice(j, st.MatchID)
		}
		if n.rng.IntN(2) == 0 {
			n.after(time.Duration(n.rng.Int64N(int64(n.cfg.NoticeDelay)))+1, func() {
				n.step(j, discovery.PeerGone{Peer: nd.id})
			})
		}
	}
}

// --- invariants ---

// observe records node i's new status and checks the invariants it touches.
func (n *Net) observe(i int) {
	nd := n.nodes[i]
	old, st := nd.st, nd.m.Status()
	nd.st = st
	if old.State != st.State || old.Partner != st.Partner || old.MatchID != st.MatchID {
		nd.since = n.now
		if old.State == discovery.StateMatched {
			n.unhold(old.MatchID, i)
			if !nd.inCall {
				n.stats.HalfMatches++
			}
		}
		nd.inCall = false
		if st.State == discovery.StateMatched {
			n.holders[st.MatchID] = append(n.holders[st.MatchID], i)
		}
	}
	if st.State == discovery.StateMatched && st.InCall {
		nd.inCall = true
	}
	if !st.NextWake.IsZero() && !st.NextWake.After(n.now) {
		n.fail(i, "NextWake %v is not after now", st.NextWake.Sub(n.start))
		return
	}
	switch st.State {
	case discovery.StateIdle, discovery.StateSearching:
		if st.Partner != "" {
			n.fail(i, "%v with partner %s", st.State, st.Partner)
		}
	case discovery.StateClaiming, discovery.StateMatched:
		if _, ok := n.index[st.Partner]; !ok || st.Partner == nd.id {
			n.fail(i, "%v with bad partner %q", st.State, st.Partner)
			return
		}
	}
	if st.State == discovery.StateMatched {
		if err := n.checkMatch(st.MatchID); err != "" {
			n.fail(i, "%s", err)
		}
	}
}

// checkMatch: at most two nodes hold a match id, and two holders name each
// other, with exactly one offerer.
func (n *Net) checkMatch(id discovery.MatchID) string {
	hs := n.holders[id]
	sts := make([]discovery.Status, len(hs))
	ids := make([]discovery.PeerID, len(hs))
	for k, h := range hs {
		sts[k], ids[k] = n.nodes[h].st, n.nodes[h].id
	}
	return checkHolders(ids, sts)
}

// checkHolders is the safety check on the nodes that hold one match id.
func checkHolders(ids []discovery.PeerID, sts []discovery.Status) string {
	switch len(ids) {
	case 0, 1:
		return ""
	case 2:
		a, b := sts[0], sts[1]
		if a.Partner != ids[1] || b.Partner != ids[0] {
			return fmt.Sprintf("match %v: %s->%s and %s->%s", a.MatchID, ids[0], a.Partner, ids[1], b.Partner)
		}
		if a.Offerer == b.Offerer {
			return fmt.Sprintf("match %v: offerer %v on both sides", a.MatchID, a.Offerer)
		}
		return ""
	}
	return fmt.Sprintf("match %v held by %d nodes: %v", sts[0].MatchID, len(ids), ids)
}

func (n *Net) unhold(id discovery.MatchID, i int) {
	hs := n.holders[id]
	for k, h := range hs {
		if h == i {
			hs = append(hs[:k], hs[k+1:]...)
			break
		}
	}
	if len(hs) == 0 {
		delete(n.holders, id)
	} else {
		n.holders[id] = hs
	}
}

// audit sweeps every live node for liveness: nothing stuck past its timer.
func (n *Net) audit() {
	slack := time.Millisecond
	for i, nd := range n.nodes {
		if !nd.alive {
			continue
		}
		st, age := nd.st, n.now.Sub(nd.since)
		switch {
		case !st.NextWake.IsZero() && st.NextWake.Before(n.now):
			n.fail(i, "NextWake %v passed without a Tick", st.NextWake.Sub(n.start))
		case st.State == discovery.StateClaiming && age > n.cfg.Matcher.ClaimTimeout+slack:
			n.fail(i, "claiming %s for %v", st.Partner, age)
		case st.State == discovery.StateMatched && !st.InCall && age > n.cfg.Matcher.SetupTimeout+slack:
			n.fail(i, "matched with %s without a call for %v", st.Partner, age)
		}
	}
	n.after(auditEvery, n.audit)
}

func (n *Net) fail(i int, format string, args ...any) {
	if n.err == nil {
		n.err = &Violation{At: n.now.Sub(n.start), Node: i, What: fmt.Sprintf(format, args...)}
	}
}

// --- queue ---

type item struct {
	at  time.Time
	seq uint64
	fn  func()
}

type queue []*item

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(*item)) }
func (q *queue) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return it
}
