// Package simnet runs many discovery.Matchers (or, for comparison, the
// baseline design) over a deterministic in-memory network: one queue of
// timed events, a seeded random source for latency, loss and reordering,
// Ticks at each node's next wake, presence over the shard topics of a
// discovery.Sharder per node (or one topic), and the call layer reduced to
// offer, answer and bye messages. After every step it checks the matcher
// invariants of DESIGN.md; a periodic sweep checks that nothing is stuck.
// The same Config, seed and schedule replay the same run exactly. Scenario
// describes a workload (sizes, churn, loss, crashes, partitions) and
// RunScenario measures it (Report); `serendip sim` prints the reports.
//
// The invariants:
//
//   - Safety, on every step: a node in Claiming or Matched names a real
//     peer other than itself; at most two nodes hold a match id, and two
//     holders name each other, with exactly one offerer.
//   - Liveness, on every step and in a sweep every 100ms (every second
//     above 10,000 nodes): NextWake is in the future and its Tick comes; no
//     node claims past ClaimTimeout or stays matched without a call past
//     SetupTimeout; and no two live nodes that could match (neither
//     excludes the other, no partition between them) both keep searching
//     for longer than a bound derived from the timers (liveBound).
//
// Performance: the queue is a calendar of millisecond buckets (queue.go),
// events carry their data in place, a presence message is boxed once for
// all its receivers, and the matcher's Status is O(1). About 2µs of one
// core per event; a node in a call costs only the presence of its shard.
//
// The model, message by message:
//
//   - Announce: the node's Sharder names the shards (Publish); the message
//     goes to every other live subscriber of each, each copy with its own
//     latency and loss, filtered as the node's topic validator would
//     (expired, or not newer than the last seq from that sender: dropped).
//     Subscribers tell their Sharder (Heard). Without sharding there is one
//     topic, the root, that every node joins.
//   - SendClaim: a ClaimReceived at the target, and then a ClaimSent at
//     the claimer (there is no dial to wait for); a claim to a crashed
//     node fails (ClaimFailed) after a round trip.
//   - SendReply: a ReplyReceived at the claimer.
//   - Matched (offerer): an offer to the partner. If the partner holds the
//     same match it answers, and when the answer arrives both sides get
//     CallStarted; otherwise the partner answers with a bye.
//   - EndCall: a bye, which the partner's node turns into CallEnded. Rematch
//     is true when the call never started (a failed setup must not leave a
//     searching user idle) and Config.Rematch otherwise.
//   - A crash silences a node for good. Each live subscriber of its shards
//     hears PeerGone for it with probability 1/2; a partner in a call
//     notices after NoticeDelay.
//   - A partition (Partition) drops every message between its two sides
//     silently, as a cut network does; calls across it fail after
//     NoticeDelay, and everything else recovers by timeouts.
//
// Loss (Config.Loss, Config.SilentLoss) applies to every message.
//
// Presence bytes are counted with GossipSub's costs, per message: the real
// Presence.Marshal size (with two typical multiaddrs) plus GossipOverhead
// and the topic name; each subscriber of the topic receives it from its
// mesh peers and forwards it to the others, 2·D'−1 copies where D' =
// min(GossipD, subscribers−1) is the mesh degree, and the publisher sends D'.
package simnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"serendip/discovery"
)

// GossipSub costs used for presence bytes (see the package doc).
const (
	// GossipD is GossipSub's mesh degree D.
	GossipD = 6
	// GossipOverhead is what one GossipSub message adds to its payload,
	// besides the topic name: the signed envelope (from: 40, seqno: 10,
	// signature: 66, field tags and lengths: 7), the RPC framing (2) and the
	// transport's (yamux header 12, noise tag and length 18).
	GossipOverhead = 40 + 10 + 66 + 7 + 2 + 12 + 18
)

// simAddrs are the multiaddrs every simulated presence carries, for its
// size: /ip4/203.0.113.7/tcp/4001 and /ip4/203.0.113.7/udp/4001/quic-v1.
var simAddrs = [][]byte{
	{0x04, 203, 0, 113, 7, 0x06, 0x0f, 0xa1},
	{0x04, 203, 0, 113, 7, 0x91, 0x02, 0x0f, 0xa1, 0xcc, 0x03},
}

// Config describes one simulated network.
type Config struct {
	Nodes   int
	Seed    uint64
	Matcher discovery.Config

	// Sharded runs presence over the shards of a discovery.Sharder per
	// node, configured by Shard and starting at ShardLevel (the level a
	// node remembers from its last run). Otherwise every node joins the
	// root topic.
	Sharded    bool
	Shard      discovery.ShardConfig
	ShardLevel int
	// JoinFresh: the nodes that come online later (Join) are newcomers that
	// do not know the network's level (they probe from the root); otherwise
	// they start at ShardLevel, as nodes that remember it.
	JoinFresh bool

	// Baseline runs the descendant design (see baseline) instead of the
	// Matcher.
	Baseline bool

	// Latency of every message; if its Kind is empty, uniform on
	// [MinLatency, MaxLatency].
	Latency                Latency
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
	// crashed or was cut off, and the longest delay before a PeerGone. Zero
	// means 3s.
	NoticeDelay time.Duration

	// KeepGoing counts invariant violations and runs on; otherwise Run
	// stops at the first.
	KeepGoing bool
	// LiveBound: two live nodes that can reach each other, neither
	// excluding the other, may not both search for longer than this. Zero
	// derives it from the timers (see liveBound).
	LiveBound time.Duration
	// TrackPairs records the calls of every pair (Pairs); on by default up
	// to 4096 nodes.
	TrackPairs bool
	// Network names the topics (for their length in presence bytes);
	// "main" by default.
	Network string
}

// Stats counts what happened in a run.
type Stats struct {
	Claims      int // SendClaim actions
	Replies     int // SendReply actions
	Matches     int // Matched actions (one per side)
	Calls       int // calls started on both sides
	HalfMatches int // matches left before their call started
	Abandoned   int // late accepts answered with EndCall{ReasonAbandoned}
	Presence    int // presence messages published (one per topic)
	Messages    int // messages sent, one per receiver
	Lost        int // messages lost (or cut by a partition)
	Crashes     int
	Steps       int // machine steps
	Violations  int // invariant violations (KeepGoing)
}

// Violation is an invariant broken during a run.
type Violation struct {
	At   time.Duration // since the start of the run
	Node int
	Kind string // "safety" or "liveness"
	What string
}

func (v *Violation) Error() string {
	return fmt.Sprintf("simnet: at %v, node %d: %s: %s", v.At, v.Node, v.Kind, v.What)
}

// Net is one simulated network.
type Net struct {
	cfg     Config
	lat     Latency
	rng     *rand.Rand
	start   time.Time
	now     int64 // ns since start
	queue   queue
	seq     uint64
	nodes   []*node
	index   map[discovery.PeerID]int32
	holders map[discovery.MatchID][2]int32 // nodes in StateMatched under an id; -1 for none
	pairs   map[[2]int]int
	stats   Stats
	err     *Violation
	errs    []*Violation
	trace   func(i int, ev discovery.Event, acts []discovery.Action)

	topics   map[discovery.Shard]*topic
	searchDB registry // baseline: who is searching
	live     int      // nodes online and not crashed

	cut      bool // a partition is in force
	healedAt int64
	sides    []bool // side of each node while cut

	audit     time.Duration
	liveBound time.Duration
	rtt       time.Duration

	// metrics
	ttm, ttmWarm []float32 // milliseconds, one per completed search
	presBytes    float64   // total presence bytes (sharded: also per node)
	shardBuf     []discovery.Shard
	shardBuf2    []discovery.Shard
}

type node struct {
	id    discovery.PeerID
	i     int32
	m     machine
	sh    *discovery.Sharder
	alive bool // online and not crashed
	dead  bool // crashed
	seqs  seqFilter
	pseq  uint64
	wake  int64 // time of the pending wake; -1 if none
	st    discovery.Status
	since int64 // when st's (State, Partner, MatchID) began
	// inCall: st.InCall was seen for the current match
	inCall bool
	calls  int32
	subs   []membership
	last   discovery.Announce // latest searching announcement
	lastOK bool

	searchAt, warmAt int64 // current search; -1 if none
	onlineAt         int64 // when it came online last
	onlineFor        int64 // time online before that
	joined           bool  // came online late (Join)
	// the sharder's inputs at its last Update, and its NextWake then
	shSearching, shLonely bool
	shWake                int64
	bytes                 float64 // presence bytes moved by this node
}

type membership struct {
	sh   discovery.Shard
	pos  int32
	mark float64 // the topic's perSub when we joined
}

type topic struct {
	subs    []int32
	nameLen int
	// perSub is the presence bytes each subscriber has moved on this topic
	// since it was created; a member owes perSub minus its mark.
	perSub float64
}

type presenceMsg struct {
	ev      discovery.Event // the PresenceSeen, boxed once for all receivers
	on      discovery.Shard
	from    int32
	level   uint8
	seq     uint64
	expires int64
}

// New builds a network of cfg.Nodes idle matchers, all online.
func New(cfg Config) (*Net, error) {
	if cfg.Nodes < 1 {
		return nil, errors.New("simnet: need at least one node")
	}
	if cfg.Nodes > 1<<30 {
		return nil, errors.New("simnet: too many nodes")
	}
	if err := cfg.Matcher.Validate(); err != nil {
		return nil, err
	}
	lat := cfg.Latency
	if lat.Kind == "" {
		lat = Uniform(cfg.MinLatency, cfg.MaxLatency)
	}
	if err := lat.validate(); err != nil {
		return nil, err
	}
	if cfg.Loss < 0 || cfg.Loss >= 1 {
		return nil, fmt.Errorf("simnet: loss %v not in [0, 1)", cfg.Loss)
	}
	if cfg.Sharded {
		if err := cfg.Shard.Validate(); err != nil {
			return nil, err
		}
	}
	if cfg.NoticeDelay == 0 {
		cfg.NoticeDelay = 3 * time.Second
	}
	if cfg.Network == "" {
		cfg.Network = "main"
	}
	if cfg.Nodes <= 4096 {
		cfg.TrackPairs = true
	}
	n := &Net{
		cfg:     cfg,
		lat:     lat,
		rng:     rand.New(rand.NewPCG(cfg.Seed, 0x5e4e4d1b)),
		start:   time.Unix(1_700_000_000, 0),
		index:   make(map[discovery.PeerID]int32, cfg.Nodes),
		holders: make(map[discovery.MatchID][2]int32),
		topics:  make(map[discovery.Shard]*topic),
		audit:   100 * time.Millisecond,
		rtt:     2 * lat.Mean(),
	}
	if cfg.TrackPairs {
		n.pairs = make(map[[2]int]int)
	}
	if cfg.Nodes > 10000 {
		n.audit = time.Second
	}
	n.liveBound = cfg.LiveBound
	if n.liveBound == 0 {
		n.liveBound = liveBound(cfg)
	}
	n.searchDB.init(cfg.Nodes)
	width := len(fmt.Sprint(cfg.Nodes - 1))
	for i := 0; i < cfg.Nodes; i++ {
		id := discovery.PeerID(fmt.Sprintf("n%0*d", max(3, width), i))
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1))
		nd := &node{id: id, i: int32(i), alive: true, wake: -1, searchAt: -1, warmAt: -1}
		if cfg.Baseline {
			b := newBaseline(id, cfg.Matcher, rng)
			self := int32(i)
			b.pick = func() (discovery.PeerID, bool) { return n.searchDB.pick(n.rng, self, n.nodes) }
			b.pool = func() int { return n.searchDB.others(self) }
			nd.m = b
		} else {
			m, err := discovery.NewMatcher(id, cfg.Matcher, rng)
			if err != nil {
				return nil, err
			}
			nd.m = m
		}
		if cfg.Sharded && !cfg.Baseline {
			sh, err := discovery.NewSharder(id, cfg.Shard, cfg.ShardLevel, rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1<<40)))
			if err != nil {
				return nil, err
			}
			nd.sh = sh
		}
		nd.seqs.ttl = int64(lat.Max-lat.Min) + int64(time.Millisecond)
		n.nodes = append(n.nodes, nd)
		n.index[id] = int32(i)
	}
	for _, nd := range n.nodes {
		n.online(nd)
	}
	n.after(n.audit, n.sweep)
	return n, nil
}

// liveBound is how long two nodes that could match may both keep searching
// in a correct run: the interest window, the lonely climb to a shared shard
// (doubling each LonelyWait), a few announcements and claims lost, a failed
// call setup, with a margin.
func liveBound(cfg Config) time.Duration {
	m := cfg.Matcher
	d := m.InterestWait + 4*m.AnnounceInterval + 2*m.ClaimTimeout + m.PairWait + 2*m.ClaimJitter + m.SetupTimeout + 2*cfg.NoticeDelay
	if cfg.Sharded {
		steps := 2
		for l := 1; l < cfg.Shard.MaxLevel; l *= 2 {
			steps++
		}
		d += time.Duration(steps) * (cfg.Shard.LonelyWait + m.AnnounceInterval)
	}
	if cfg.Baseline {
		d = 24 * time.Hour // the baseline has no such bound
	}
	return d + 10*time.Second
}

// Len returns the number of nodes.
func (n *Net) Len() int { return len(n.nodes) }

// Peer returns node i's PeerID.
func (n *Net) Peer(i int) discovery.PeerID { return n.nodes[i].id }

// Status returns node i's status after its latest step.
func (n *Net) Status(i int) discovery.Status { return n.nodes[i].st }

// Alive reports whether node i is online and has not crashed.
func (n *Net) Alive(i int) bool { return n.nodes[i].alive }

// Calls returns how many calls node i has started.
func (n *Net) Calls(i int) int { return int(n.nodes[i].calls) }

// Pairs returns how many calls each pair of nodes (lower index first) had,
// if pairs are tracked.
func (n *Net) Pairs() map[[2]int]int { return n.pairs }

// Stats returns the counters so far.
func (n *Net) Stats() Stats { return n.stats }

// Violations returns the invariant violations so far (KeepGoing).
func (n *Net) Violations() []*Violation { return n.errs }

// Elapsed returns the simulated time since the start.
func (n *Net) Elapsed() time.Duration { return time.Duration(n.now) }

// RTT returns twice the mean latency.
func (n *Net) RTT() time.Duration { return n.rtt }

// Level returns node i's shard level (0 without sharding).
func (n *Net) Level(i int) int {
	if sh := n.nodes[i].sh; sh != nil {
		return int(sh.Level())
	}
	return 0
}

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

// Join takes node i offline now and brings it online at offset at (it
// joins its topics then; press Start separately).
func (n *Net) Join(i int, at time.Duration) {
	nd := n.nodes[i]
	if nd.alive {
		n.offline(nd)
	}
	nd.joined = true
	n.after(at, func() {
		if !nd.dead && !nd.alive {
			n.online(nd)
		}
	})
}

// Partition cuts the network in two from offset at for length d: side(i)
// names node i's side. See the package doc.
func (n *Net) Partition(at, d time.Duration, side func(i int) bool) {
	n.after(at, func() {
		n.cut = true
		n.sides = make([]bool, len(n.nodes))
		for i := range n.nodes {
			n.sides[i] = side(i)
		}
		for i, nd := range n.nodes {
			if st := nd.st; nd.alive && st.State == discovery.StateMatched && st.InCall {
				if j, ok := n.index[st.Partner]; ok && n.sides[i] != n.sides[j] {
					n.notice(i, st.MatchID)
				}
			}
		}
	})
	n.after(at+d, func() {
		n.cut, n.sides, n.healedAt = false, nil, n.now
	})
}

// Run processes events for at most d of simulated time, or until until
// (checked after every event, may be nil) returns true. It reports whether
// until was met, and the first invariant violation (unless KeepGoing).
func (n *Net) Run(d time.Duration, until func(*Net) bool) (bool, error) {
	end := n.now + int64(d)
	for n.err == nil {
		if next := n.queue.peek(); next == nil || next.at > end {
			break
		}
		it := n.queue.pop()
		n.now = it.at
		switch it.kind {
		case kindFunc:
			it.fn()
		case kindPresence:
			n.deliver(int(it.to), it.msg)
		case kindWake:
			if nd := n.nodes[it.to]; nd.wake == it.at {
				nd.wake = -1
				n.step(int(it.to), discovery.Tick{})
			}
		}
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

func (n *Net) at() time.Time { return n.start.Add(time.Duration(n.now)) }

func (n *Net) after(d time.Duration, fn func()) {
	n.seq++
	n.queue.push(item{at: n.now + int64(d), seq: n.seq, fn: fn})
}

func (n *Net) latency() time.Duration { return n.lat.draw(n.rng) }

// reach reports whether a message from i to j gets through the partition.
func (n *Net) reach(i, j int) bool { return !n.cut || n.sides[i] == n.sides[j] }

// lose decides the fate of one message from i to j: true if it is lost.
func (n *Net) lose(i, j int) bool {
	n.stats.Messages++
	if !n.reach(i, j) || (n.cfg.Loss > 0 && n.rng.Float64() < n.cfg.Loss) {
		n.stats.Lost++
		return true
	}
	return false
}

// stream delivers a message from i to j on a stream after a latency unless
// it is lost. A lost message resets its stream: reset runs after a latency
// (both ends notice), unless SilentLoss or a partition.
func (n *Net) stream(i, j int, deliver, reset func()) bool {
	if n.lose(i, j) {
		if reset != nil && !n.cfg.SilentLoss && n.reach(i, j) {
			n.after(n.latency(), reset)
		}
		return false
	}
	n.after(n.latency(), deliver)
	return true
}

func (n *Net) step(i int, ev discovery.Event) {
	nd := n.nodes[i]
	if !nd.alive || (n.err != nil && !n.cfg.KeepGoing) {
		return
	}
	n.stats.Steps++
	now := n.at()
	acts := nd.m.Step(now, ev)
	n.observe(i)
	if n.trace != nil {
		n.trace(i, ev, acts)
	}
	for _, a := range acts {
		n.carry(i, a)
	}
	if nd.sh != nil {
		searching := nd.st.State.Searching()
		// Update when its inputs changed or at its wake (deliver makes it
		// due when a Heard may end a probe); otherwise it changes nothing.
		if searching == nd.shSearching && nd.st.Lonely == nd.shLonely && n.now < nd.shWake {
			n.schedule(nd)
			return
		}
		nd.shSearching, nd.shLonely = searching, nd.st.Lonely
		changed := nd.sh.Update(now, searching, nd.st.Lonely)
		nd.shWake = int64(nd.sh.NextWake().Sub(n.start))
		if changed {
			n.resubscribe(nd)
			if searching && nd.lastOK {
				n.publish(nd, nd.last) // tell our new shards at once
			}
		}
	}
	n.schedule(nd)
}

// schedule keeps one pending wake per node, at the earlier of its
// machine's and its sharder's.
func (n *Net) schedule(nd *node) {
	w := nd.st.NextWake
	if nd.sh != nil {
		if s := nd.sh.NextWake(); !s.IsZero() && (w.IsZero() || s.Before(w)) {
			w = s
		}
	}
	if w.IsZero() {
		return
	}
	t := int64(w.Sub(n.start))
	if t <= n.now {
		t = n.now + 1
	}
	if nd.wake == t {
		return
	}
	nd.wake = t
	n.seq++
	n.queue.push(item{at: t, seq: n.seq, kind: kindWake, to: nd.i})
}

func (n *Net) carry(i int, a discovery.Action) {
	nd := n.nodes[i]
	switch a := a.(type) {
	case discovery.Announce:
		if a.Searching {
			nd.last, nd.lastOK = a, true
		}
		n.publish(nd, a)
	case discovery.SendClaim:
		n.stats.Claims++
		j := int(n.index[a.To])
		fail := func() { n.step(i, discovery.ClaimFailed{To: a.To, ID: a.Claim.ID}) }
		n.stream(i, j, func() {
			if !n.nodes[j].alive {
				n.after(n.latency(), fail) // no connection
				return
			}
			n.step(j, discovery.ClaimReceived{From: nd.id, Claim: a.Claim})
			n.step(i, discovery.ClaimSent{To: a.To, ID: a.Claim.ID})
		}, fail)
	case discovery.SendReply:
		n.stats.Replies++
		j, id := int(n.index[a.To]), a.Reply.ID
		n.stream(i, j, func() { n.step(j, discovery.ReplyReceived{From: nd.id, Reply: a.Reply}) }, func() {
			n.step(j, discovery.ClaimFailed{To: nd.id, ID: id})
			if a.Reply.Verdict == discovery.Accept { // the target's node sees its write fail
				n.step(i, discovery.CallEnded{ID: id, Rematch: true})
			}
		})
	case discovery.Matched:
		n.stats.Matches++
		if a.Offerer {
			j := int(n.index[a.Peer])
			n.stream(i, j, func() { n.offer(i, j, a.ID) }, func() { n.signalFailed(i, j, a.ID) })
		}
	case discovery.EndCall:
		if a.Reason == discovery.ReasonAbandoned {
			n.stats.Abandoned++
		}
		j := int(n.index[a.Peer])
		bye := func() { n.bye(j, a.ID) }
		if !n.stream(i, j, bye, bye) && (n.cfg.SilentLoss || !n.reach(i, j)) {
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
		n.stream(j, i, bye, bye)
		return
	}
	// The answer; when it arrives ICE connects and both sides are in the call.
	n.stream(j, i, func() {
		n.step(i, discovery.CallStarted{ID: id})
		n.step(j, discovery.CallStarted{ID: id})
		a, b := n.nodes[i], n.nodes[j]
		if a.alive && b.alive && a.inCall && a.st.MatchID == id && b.inCall && b.st.MatchID == id {
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
	if n.pairs != nil {
		n.pairs[[2]int{min(i, j), max(i, j)}]++
	}
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
	if nd.dead {
		return
	}
	n.stats.Crashes++
	st := nd.st
	var shards []discovery.Shard
	for _, ms := range nd.subs {
		shards = append(shards, ms.sh)
	}
	if nd.alive {
		n.offline(nd)
	}
	nd.dead = true
	if st.State == discovery.StateMatched {
		if j, ok := n.index[st.Partner]; ok {
			if p := n.nodes[j]; p.alive && p.st.State == discovery.StateMatched && p.st.Partner == nd.id {
				n.notice(int(j), p.st.MatchID)
			}
		}
	}
	// Peers connected to it notice: here, the subscribers of its shards.
	for _, sh := range shards {
		for _, j := range n.topics[sh].subs {
			if n.rng.IntN(2) == 0 {
				j := int(j)
				n.after(time.Duration(n.rng.Int64N(int64(n.cfg.NoticeDelay)))+1, func() {
					n.step(j, discovery.PeerGone{Peer: nd.id})
				})
			}
		}
	}
	nd.subs = nil
}

// online brings a node up: it joins its topics.
func (n *Net) online(nd *node) {
	nd.alive = true
	nd.onlineAt = n.now
	n.live++
	if nd.sh == nil {
		if !n.cfg.Baseline {
			n.join(nd, discovery.Shard{})
		}
		return
	}
	if nd.joined && n.cfg.JoinFresh && nd.onlineFor == 0 {
		sh, err := discovery.NewSharder(nd.id, n.cfg.Shard, -1, rand.New(rand.NewPCG(n.cfg.Seed, uint64(nd.i)+1<<40)))
		if err != nil {
			n.fail(int(nd.i), "liveness", "sharder: %v", err)
			return
		}
		nd.sh = sh
	}
	nd.sh.Update(n.at(), false, false)
	nd.shSearching, nd.shLonely = false, false
	nd.shWake = int64(nd.sh.NextWake().Sub(n.start))
	n.resubscribe(nd)
	n.schedule(nd)
}

// offline takes a node down: it leaves its topics, and its presence bytes
// stop accruing.
func (n *Net) offline(nd *node) {
	if nd.st.State == discovery.StateMatched {
		n.unhold(nd.st.MatchID, int(nd.i))
	}
	n.searchDB.remove(nd.i)
	subs := nd.subs
	for len(nd.subs) > 0 {
		n.leave(nd, nd.subs[len(nd.subs)-1].sh)
	}
	nd.subs = subs[:0]
	nd.alive = false
	nd.searchAt, nd.warmAt = -1, -1
	nd.onlineFor += n.now - nd.onlineAt
	n.live--
}

// online returns how long nd has been online in all, at now.
func (nd *node) online(now int64) int64 {
	if nd.alive {
		return nd.onlineFor + now - nd.onlineAt
	}
	return nd.onlineFor
}

// --- topics ---

func (n *Net) topic(sh discovery.Shard) *topic {
	t := n.topics[sh]
	if t == nil {
		t = &topic{nameLen: len(discovery.ShardTopic(n.cfg.Network, sh))}
		n.topics[sh] = t
	}
	return t
}

func (n *Net) join(nd *node, sh discovery.Shard) {
	t := n.topic(sh)
	nd.subs = append(nd.subs, membership{sh: sh, pos: int32(len(t.subs)), mark: t.perSub})
	t.subs = append(t.subs, nd.i)
}

// topicBytes returns the presence bytes nd moved on the topics it is on, not
// yet added to nd.bytes.
func (n *Net) topicBytes(nd *node) float64 {
	b := 0.0
	for _, ms := range nd.subs {
		b += n.topics[ms.sh].perSub - ms.mark
	}
	return b
}

func (n *Net) leave(nd *node, sh discovery.Shard) {
	for k, ms := range nd.subs {
		if ms.sh != sh {
			continue
		}
		t := n.topics[sh]
		nd.bytes += t.perSub - ms.mark
		last := len(t.subs) - 1
		if moved := t.subs[last]; int(ms.pos) != last {
			t.subs[ms.pos] = moved
			for x, mm := range n.nodes[moved].subs {
				if mm.sh == sh {
					n.nodes[moved].subs[x].pos = ms.pos
					break
				}
			}
		}
		t.subs = t.subs[:last]
		nd.subs = append(nd.subs[:k], nd.subs[k+1:]...)
		return
	}
}

// resubscribe makes nd's topics its sharder's Subscriptions. It reports
// whether it joined any.
func (n *Net) resubscribe(nd *node) bool {
	joined := false
	want := nd.sh.Subscriptions(n.shardBuf[:0])
	n.shardBuf = want
	for k := len(nd.subs) - 1; k >= 0; k-- {
		sh := nd.subs[k].sh
		keep := false
		for _, w := range want {
			keep = keep || w == sh
		}
		if !keep {
			n.leave(nd, sh)
		}
	}
	for _, w := range want {
		have := false
		for _, ms := range nd.subs {
			have = have || ms.sh == w
		}
		if !have {
			n.join(nd, w)
			joined = true
		}
	}
	return joined
}

// publish sends one announcement of nd to its topics.
func (n *Net) publish(nd *node, a discovery.Announce) {
	nd.pseq++
	p := a.Presence(nd.pseq, simAddrs)
	if nd.sh != nil {
		p.Level = nd.sh.Level()
	}
	b, err := p.Marshal()
	if err != nil {
		n.fail(int(nd.i), "safety", "announce does not encode: %v", err)
		return
	}
	if n.cfg.Baseline { // one topic that everybody is on: count, do not deliver
		n.stats.Presence++
		wire := float64(len(b) + GossipOverhead + len(discovery.PresenceTopic(n.cfg.Network)))
		d := float64(min(GossipD, n.live-1))
		if d > 0 {
			n.presBytes += wire * (d + float64(n.live-1)*(2*d-1))
		}
		return
	}
	var shards []discovery.Shard
	if nd.sh != nil {
		shards = nd.sh.Publish(a.Searching, n.shardBuf2[:0])
		n.shardBuf2 = shards
	} else {
		shards = append(n.shardBuf2[:0], discovery.Shard{})
	}
	var seen discovery.Event = p.Seen(nd.id) // boxed once
	for _, sh := range shards {
		n.stats.Presence++
		msg := &presenceMsg{ev: seen, on: sh, from: nd.i, level: p.Level, seq: nd.pseq, expires: int64(a.Expires.Sub(n.start))}
		t := n.topic(sh)
		wire := float64(len(b) + GossipOverhead + t.nameLen)
		s := len(t.subs)
		subscribed := false
		for _, ms := range nd.subs {
			subscribed = subscribed || ms.sh == sh
		}
		d := float64(min(GossipD, max(0, s-1)))
		if !subscribed {
			d = float64(min(GossipD, s))
		}
		nd.bytes += wire * d
		n.presBytes += wire * d
		if per := wire * (2*float64(min(GossipD, max(0, s-1))) - 1); per > 0 {
			t.perSub += per
			others := s
			if subscribed {
				nd.bytes -= per // charged through perSub, but it sent, not received
				others--
			}
			n.presBytes += per * float64(others)
		}
		for _, j := range t.subs {
			if j == nd.i {
				continue
			}
			if n.lose(int(nd.i), int(j)) {
				continue
			}
			n.seq++
			n.queue.push(item{at: n.now + int64(n.latency()), seq: n.seq, kind: kindPresence, msg: msg, to: j})
		}
	}
}

// deliver hands a presence message to node j, through its validator.
func (n *Net) deliver(j int, msg *presenceMsg) {
	nd := n.nodes[j]
	if !nd.alive || msg.expires <= n.now || !nd.seqs.accept(msg.from, msg.seq, n.now) {
		return
	}
	if nd.sh != nil {
		if nd.sh.Probing() {
			nd.shWake = 0 // Heard may end the probe: Update at this step
		}
		nd.sh.Heard(n.at(), msg.on, msg.level)
	}
	n.step(j, msg.ev)
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
			n.hold(st.MatchID, i)
		}
		n.searchMetrics(nd, old, st)
	}
	if nd.searchAt >= 0 && !n.cfg.Baseline {
		// Warm: since the matcher last stopped being lonely (it has a peer
		// in its pool to pair with).
		if st.Lonely {
			nd.warmAt = -1
		} else if nd.warmAt < 0 {
			nd.warmAt = n.now
		}
	}
	if st.State == discovery.StateMatched && st.InCall {
		nd.inCall = true
	}
	if !st.NextWake.IsZero() && !st.NextWake.After(n.at()) {
		n.fail(i, "liveness", "NextWake %v is not after now", st.NextWake.Sub(n.start))
		return
	}
	if old.State == st.State && old.Partner == st.Partner && old.MatchID == st.MatchID && old.Offerer == st.Offerer {
		return // checked when it last changed; the other holder is checked when it changes
	}
	switch st.State {
	case discovery.StateIdle, discovery.StateSearching:
		if st.Partner != "" {
			n.fail(i, "safety", "%v with partner %s", st.State, st.Partner)
		}
	case discovery.StateClaiming, discovery.StateMatched:
		if _, ok := n.index[st.Partner]; !ok || st.Partner == nd.id {
			n.fail(i, "safety", "%v with bad partner %q", st.State, st.Partner)
			return
		}
	}
	if st.State == discovery.StateMatched {
		if err := n.checkMatch(st.MatchID); err != "" {
			n.fail(i, "safety", "%s", err)
		}
	}
}

// searchMetrics follows one node's searches: from entering the search to
// Matched.
func (n *Net) searchMetrics(nd *node, old, st discovery.Status) {
	was, is := old.State.Searching(), st.State.Searching()
	if n.cfg.Baseline {
		if st.State == discovery.StateSearching {
			n.searchDB.add(nd.i)
		} else {
			n.searchDB.remove(nd.i)
		}
	}
	switch {
	case !was && is:
		nd.searchAt, nd.warmAt = n.now, -1
		if n.cfg.Baseline {
			nd.warmAt = n.now // its view is perfect
		}
	case was && st.State == discovery.StateMatched && nd.searchAt >= 0:
		n.ttm = append(n.ttm, float32(float64(n.now-nd.searchAt)/1e6))
		if nd.warmAt >= 0 {
			n.ttmWarm = append(n.ttmWarm, float32(float64(n.now-nd.warmAt)/1e6))
		} else {
			n.ttmWarm = append(n.ttmWarm, 0) // claimed before it knew anyone
		}
		nd.searchAt, nd.warmAt = -1, -1
	case !is:
		nd.searchAt, nd.warmAt = -1, -1
	}
}

// checkMatch: at most two nodes hold a match id, and two holders name each
// other, with exactly one offerer.
func (n *Net) checkMatch(id discovery.MatchID) string {
	hs := n.holders[id]
	var ids []discovery.PeerID
	var sts []discovery.Status
	for _, h := range hs {
		if h >= 0 {
			ids = append(ids, n.nodes[h].id)
			sts = append(sts, n.nodes[h].st)
		}
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

func (n *Net) hold(id discovery.MatchID, i int) {
	hs, ok := n.holders[id]
	if !ok {
		hs = [2]int32{-1, -1}
	}
	switch {
	case hs[0] < 0:
		hs[0] = int32(i)
	case hs[1] < 0:
		hs[1] = int32(i)
	default:
		n.fail(i, "safety", "match %v held by a third node, after %s and %s", id, n.nodes[hs[0]].id, n.nodes[hs[1]].id)
		return
	}
	n.holders[id] = hs
}

func (n *Net) unhold(id discovery.MatchID, i int) {
	hs, ok := n.holders[id]
	if !ok {
		return
	}
	for k := range hs {
		if hs[k] == int32(i) {
			hs[k] = -1
		}
	}
	if hs[0] < 0 && hs[1] < 0 {
		delete(n.holders, id)
	} else {
		n.holders[id] = hs
	}
}

// sweep checks every live node for liveness: nothing stuck past its timer,
// and no two nodes that could match both searching for over the bound.
func (n *Net) sweep() {
	slack := time.Millisecond
	now := n.at()
	var long []int
	from := max(int64(0), n.healedAt)
	for i, nd := range n.nodes {
		if !nd.alive {
			continue
		}
		st, age := nd.st, time.Duration(n.now-nd.since)
		switch {
		case !st.NextWake.IsZero() && st.NextWake.Before(now) && nd.wake < 0:
			n.fail(i, "liveness", "NextWake %v passed without a Tick", st.NextWake.Sub(n.start))
		case st.State == discovery.StateClaiming && (now.After(st.ClaimDeadline.Add(slack)) || age > discovery.MaxClaimWait(n.cfg.Matcher)+slack):
			n.fail(i, "liveness", "claiming %s for %v", st.Partner, age)
		case st.State == discovery.StateMatched && !st.InCall && age > n.cfg.Matcher.SetupTimeout+slack:
			n.fail(i, "liveness", "matched with %s without a call for %v", st.Partner, age)
		}
		if nd.searchAt >= 0 && time.Duration(n.now-max(nd.searchAt, from, nd.onlineAt)) > n.liveBound && !n.cut {
			long = append(long, i)
		}
	}
	if len(long) > 1 && len(long) < 2000 {
		for x, i := range long {
			for _, j := range long[x+1:] {
				a, b := n.nodes[i], n.nodes[j]
				if !a.m.Excludes(b.id) && !b.m.Excludes(a.id) {
					n.fail(i, "liveness", "searching for over %v, as is %s, whom it could match", n.liveBound, b.id)
					break
				}
			}
		}
	} else if len(long) >= 2000 {
		n.fail(long[0], "liveness", "%d nodes searching for over %v", len(long), n.liveBound)
	}
	n.after(n.audit, n.sweep)
}

func (n *Net) fail(i int, kind, format string, args ...any) {
	v := &Violation{At: time.Duration(n.now), Node: i, Kind: kind, What: fmt.Sprintf(format, args...)}
	n.stats.Violations++
	if len(n.errs) < 100 {
		n.errs = append(n.errs, v)
	}
	if n.err == nil && !n.cfg.KeepGoing {
		n.err = v
	}
}

// --- the validator's memory ---

// seqFilter is a node's topic validator in small: the last seq accepted
// from each recent sender, forgotten ttl after it was accepted. The
// simulator sends no replays, so an older message can only arrive after a
// newer one by reordering, at most the spread of latencies later: that is
// the ttl, which keeps the filter short.
type seqFilter struct {
	ttl     int64
	n       int
	inline  [4]seqEntry // the first entries, in the node itself (no cache miss)
	entries []seqEntry  // the rest
}

type seqEntry struct {
	from int32
	seq  uint64
	at   int64
}

func (f *seqFilter) accept(from int32, seq uint64, now int64) bool {
	ok, found := true, false
	check := func(e *seqEntry) bool { // reports whether e is kept
		if e.from == from {
			found = true
			if seq <= e.seq {
				ok = false
			} else {
				e.seq, e.at = seq, now
			}
		}
		return now-e.at < f.ttl
	}
	all := f.n + len(f.entries)
	kept := 0
	for k := 0; k < all; k++ {
		e := f.at(k)
		if check(e) {
			*f.at(kept) = *e
			kept++
		}
	}
	f.setLen(kept)
	if !found {
		f.setLen(kept + 1)
		*f.at(kept) = seqEntry{from: from, seq: seq, at: now}
	}
	return ok
}

func (f *seqFilter) at(k int) *seqEntry {
	if k < len(f.inline) {
		return &f.inline[k]
	}
	return &f.entries[k-len(f.inline)]
}

func (f *seqFilter) setLen(l int) {
	f.n = min(l, len(f.inline))
	if extra := l - len(f.inline); extra > 0 {
		for len(f.entries) < extra {
			f.entries = append(f.entries, seqEntry{})
		}
		f.entries = f.entries[:extra]
	} else {
		f.entries = nil // a burst is over: give its memory back
	}
}

// --- the baseline's view ---

// registry is the set of searching nodes, for the baseline's picks.
type registry struct {
	list []int32
	pos  []int32 // index in list, -1 if absent
}

func (r *registry) init(n int) {
	r.pos = make([]int32, n)
	for i := range r.pos {
		r.pos[i] = -1
	}
}

func (r *registry) add(i int32) {
	if r.pos[i] >= 0 {
		return
	}
	r.pos[i] = int32(len(r.list))
	r.list = append(r.list, i)
}

func (r *registry) remove(i int32) {
	p := r.pos[i]
	if p < 0 {
		return
	}
	last := int32(len(r.list) - 1)
	moved := r.list[last]
	r.list[p] = moved
	r.pos[moved] = p
	r.list = r.list[:last]
	r.pos[i] = -1
}

func (r *registry) others(self int32) int {
	if r.pos[self] >= 0 {
		return len(r.list) - 1
	}
	return len(r.list)
}

// pick draws a searching node other than self, uniformly.
func (r *registry) pick(rng *rand.Rand, self int32, nodes []*node) (discovery.PeerID, bool) {
	if r.others(self) == 0 {
		return "", false
	}
	for {
		j := r.list[rng.IntN(len(r.list))]
		if j != self {
			return nodes[j].id, true
		}
	}
}
