package node

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"

	"serendip/discovery"
	"serendip/discovery/p2p"
)

// Sharded presence (see the package doc of discovery, Presence shards). The
// node keeps a discovery.Sharder and follows it: it joins the topic of every
// shard the sharder names (discovery.ShardTopic: the root is the presence
// topic itself), each with its own validator, publishes each announcement of
// the matcher to the shards the sharder picks, and tells the sharder what it
// heard where. A goroutine updates the sharder with the matcher's state (at
// the sharder's NextWake, at least every second, and at once when a search
// starts, ends, or turns lonely or not), joins and leaves topics,
// and announces again on the shards just joined while searching. Each
// joined shard below the root is met through the DHT (meet), and the home
// shard's sibling too once a search there climbs (meetSibling: a lonely
// search announces there without joining it). A node in a call longer than
// a presence lives leaves every shard topic until it searches again (it
// has no use for presence meanwhile). Matches are
// not disturbed by a change of shard: claims go over direct streams, and the
// pool keeps the peers it knew until their presence expires.

// shardLevelFile, in the data directory, remembers the level between runs.
const shardLevelFile = "shard-level"

// maxPubOnly bounds the topics kept open only to publish on (samples to
// ancestors change with every epoch).
const maxPubOnly = 32

// presenceTopics is the node's set of presence topics (the field topic).
type presenceTopics struct {
	n    *Node
	ps   *pubsub.PubSub
	msgs chan shardMsg // what the subscriptions read, for readPresence
	kick chan struct{}
	// climbed is signalled at each look of follow's while a lonely search
	// has climbed (discovery.Sharder.Climbed): meetSibling waits for it.
	climbed chan struct{}
	// searched is closed when the node first searches (activate): shard
	// meets wait for it.
	searched     chan struct{}
	searchedOnce sync.Once

	// pubMu serializes topicFor's opening of topics.
	pubMu sync.Mutex

	mu      sync.Mutex
	sh      *discovery.Sharder
	joined  map[discovery.Shard]*shardTopic
	pubOnly map[discovery.Shard]*pubsub.Topic // shards we publish to without joining
	retired []*shardTopic                     // left, not yet closed (Close)
	last    discovery.Announce                // the matcher's latest searching announcement
	lastOK  bool
	level   uint8 // as last saved
	closed  bool
	// homePeers: our peers on the home shard's topic when follow last
	// looked (-1 at the root).
	homePeers int
	// emptySince: for each shard whose lookups at its rendezvous (meet)
	// have found nobody else there, since when (the first such lookup).
	emptySince map[discovery.Shard]time.Time
	// away: in a call longer than a presence lives, the node has left
	// every shard topic (see follow). advertised: when meet last
	// advertised each shard, so that coming back does not advertise it
	// again.
	away       bool
	advertised map[discovery.Shard]time.Time
}

type shardTopic struct {
	shard discovery.Shard
	name  string
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	done  chan struct{} // closed when its reader returns
	stop  context.CancelFunc
}

type shardMsg struct {
	msg *pubsub.Message
	on  discovery.Shard
}

// presenceSub is what readPresence reads: the messages of every joined
// shard (the field sub).
type presenceSub struct{ t *presenceTopics }

// Next returns the next validated presence message and the shard it came
// on.
func (s *presenceSub) Next(ctx context.Context) (*pubsub.Message, discovery.Shard, error) {
	select {
	case m := <-s.t.msgs:
		return m.msg, m.on, nil
	case <-ctx.Done():
		return nil, discovery.Shard{}, ctx.Err()
	}
}

// Cancel cancels every subscription; their readers return.
func (s *presenceSub) Cancel() {
	t := s.t
	t.mu.Lock()
	t.closed = true
	joined := t.joined
	t.joined = map[discovery.Shard]*shardTopic{}
	t.mu.Unlock()
	for _, st := range joined {
		st.stop()
		st.sub.Cancel()
		t.retire(st)
	}
}

// Close closes the topics left and removes their validators. Idempotent.
func (t *presenceTopics) Close() error {
	t.mu.Lock()
	t.closed = true
	retired, pubOnly := t.retired, t.pubOnly
	t.retired, t.pubOnly = nil, nil
	t.mu.Unlock()
	for _, st := range retired {
		_ = st.topic.Close()
		_ = t.ps.UnregisterTopicValidator(st.name)
	}
	for _, top := range pubOnly {
		_ = top.Close()
	}
	return nil
}

// retire remembers a topic whose subscription was cancelled, for Close.
func (t *presenceTopics) retire(st *shardTopic) {
	t.mu.Lock()
	t.retired = append(t.retired, st)
	t.mu.Unlock()
}

// joinPresence starts sharded presence: it joins the shards of the level
// remembered in the data directory (the root for a new node) and starts
// the goroutine that follows the sharder.
func (n *Node) joinPresence() (*presenceTopics, *presenceSub, error) {
	var b [8]byte
	_, _ = crand.Read(b[:])
	seed := binary.LittleEndian.Uint64(b[:])
	level := readShardLevel(n.cfg.DataDir)
	if level < 0 && n.cfg.StartShardLevel > 0 {
		level = n.cfg.StartShardLevel
	}
	sh, err := discovery.NewSharder(discovery.PeerID(n.h.ID()), n.cfg.ShardConfig(), level, rand.New(rand.NewPCG(seed, seed>>1|1)))
	if err != nil {
		return nil, nil, fmt.Errorf("node: sharder: %w", err)
	}
	t := &presenceTopics{
		n: n, ps: n.ps, sh: sh, level: uint8(max(0, level)),
		msgs:       make(chan shardMsg, 64),
		kick:       make(chan struct{}, 1),
		climbed:    make(chan struct{}, 1),
		searched:   make(chan struct{}),
		joined:     map[discovery.Shard]*shardTopic{},
		emptySince: map[discovery.Shard]time.Time{},
		advertised: map[discovery.Shard]time.Time{},
		pubOnly:    map[discovery.Shard]*pubsub.Topic{},
	}
	sh.Update(time.Now(), false, false)
	if err := t.sync(sh.Subscriptions(nil)); err != nil {
		t.Close()
		return nil, nil, err
	}
	n.goAsync(t.follow)
	return t, &presenceSub{t}, nil
}

// follow updates the sharder with the matcher's state, at its NextWake and
// at least every second, and carries out the changes. It returns when the
// node closes.
func (t *presenceTopics) follow() {
	n := t.n
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-timer.C:
		case <-t.kick:
		}
		var st discovery.Status
		var inCall time.Duration // how long our call has had media (0: none)
		if err := n.query(func() {
			st = n.m.Status()
			if c := n.call; c != nil && c.connected {
				inCall = time.Since(c.connectedAt)
			}
		}); err != nil {
			return
		}
		searching := st.State.Searching()
		// Away: a node in a call longer than a presence lives (by then
		// every presence it heard before has expired) leaves its shard
		// topics until it searches again, and its sharder keeps its
		// level meanwhile. Otherwise it would hear its shard's presence
		// for the whole call, as a searching node does: at 300 nodes
		// with 30-s calls, presence was four fifths of the CPU while
		// hardly anybody searched.
		away := !searching && inCall >= n.cfg.Matcher.PresenceTTL
		// Asked outside t.mu: ListPeers waits for pubsub's event loop.
		peers := -1
		if home := t.home(); home != nil {
			peers = len(home.ListPeers())
		}
		t.mu.Lock()
		now := time.Now()
		// Deaf: nobody on our shard's topic yet, though its rendezvous
		// may know some. A shard whose rendezvous has known nobody else
		// for a Window is not out of reach but empty: its silence is
		// real, and a lonely search there climbs (two nodes split off
		// into sibling shards of their own waited for each other
		// forever). Not sooner: nodes that join a shard together find
		// nobody at first.
		deaf := peers == 0
		if since, ok := t.emptySince[t.sh.Home()]; ok && now.Sub(since) >= n.cfg.ShardConfig().Window {
			deaf = false
		}
		t.homePeers = peers
		if deaf || away {
			t.sh.Deaf(now)
		}
		// A node that cannot hear its shard yet is not lonely there: it
		// would climb to every ancestor in turn and announce on each (at a
		// thousand nodes starting at once, that drowned the machine).
		changed := t.sh.Update(now, searching, st.Lonely && !deaf)
		want := t.sh.Subscriptions(nil)
		if away {
			want = nil
		}
		if away != t.away {
			t.away, changed = away, true
		}
		wake := t.sh.NextWake()
		level := t.sh.Level()
		climbed := t.sh.Climbed()
		again := changed && searching && t.lastOK
		saved := level == t.level
		t.level = level
		t.mu.Unlock()
		if changed {
			if err := t.sync(want); err != nil && n.ctx.Err() == nil {
				n.log.Warn("presence shards", "err", err)
			}
			if again {
				n.post(func() { t.republish() })
			}
		}
		if climbed {
			select {
			case t.climbed <- struct{}{}:
			default:
			}
		}
		if !saved {
			writeShardLevel(n.cfg.DataDir, int(level), n)
		}
		d := time.Second
		if !wake.IsZero() {
			d = max(10*time.Millisecond, min(d, time.Until(wake)))
		}
		timer.Reset(d)
	}
}

// republish announces the latest searching presence again, on the shards
// the sharder names now. Loop only.
func (t *presenceTopics) republish() {
	t.mu.Lock()
	a, ok := t.last, t.lastOK
	t.mu.Unlock()
	if ok && a.Expires.After(time.Now()) {
		if t.n.m.Status().State.Searching() {
			t.n.announce(a)
		}
	}
}

// targets returns the shards one announcement goes to and our level, and
// remembers a searching announcement for republish. It does not wait for
// the pubsub, so the loop may call it; topicFor finds each shard's topic.
func (t *presenceTopics) targets(a discovery.Announce) ([]discovery.Shard, uint8) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a.Searching {
		t.last, t.lastOK = a, true
	} else {
		t.lastOK = false
	}
	return t.sh.Publish(a.Searching, nil), t.sh.Level()
}

// topicFor returns the topic to publish on to shard s: the joined one, or
// one opened only to publish (a sampled ancestor, or a shard we left since
// we announced there): pubsub sends to the peers that joined it. Opening a
// topic waits for the pubsub's event loop, which may be busy for seconds on
// a loaded machine: never call it from the node's loop.
func (t *presenceTopics) topicFor(s discovery.Shard) (*pubsub.Topic, error) {
	if top := t.knownTopic(s); top != nil {
		return top, nil
	}
	t.pubMu.Lock() // one opener at a time: two would both open s
	defer t.pubMu.Unlock()
	if top := t.knownTopic(s); top != nil {
		return top, nil
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	var evict []*pubsub.Topic
	if len(t.pubOnly) >= maxPubOnly {
		for _, old := range t.pubOnly {
			evict = append(evict, old)
		}
		clear(t.pubOnly)
	}
	t.mu.Unlock()
	for _, old := range evict {
		_ = old.Close()
	}
	top, err := t.ps.Join(discovery.ShardTopic(t.n.cfg.Network, s))
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = top.Close()
		return nil, ErrClosed
	}
	t.pubOnly[s] = top
	return top, nil
}

// knownTopic is s's topic if we joined s or already opened it to publish.
func (t *presenceTopics) knownTopic(s discovery.Shard) *pubsub.Topic {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.joined[s]; st != nil {
		return st.topic
	}
	return t.pubOnly[s]
}

// home returns the topic of our home shard below the root, if joined.
func (t *presenceTopics) home() *pubsub.Topic {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.joined[t.sh.Home()]; st != nil && t.sh.Level() > 0 {
		return st.topic
	}
	return nil
}

// where returns our home shard and how many shard topics are joined.
func (t *presenceTopics) where() (shard string, topics, peers int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	peers = t.homePeers
	if t.sh.Level() == 0 {
		peers = -1
	}
	return t.sh.Home().String(), len(t.joined), peers
}

// poke makes follow look at the matcher's state now.
func (t *presenceTopics) poke() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// heard tells the sharder of a presence message received on shard on.
func (t *presenceTopics) heard(on discovery.Shard, level uint8) {
	t.mu.Lock()
	probing := t.sh.Probing()
	t.sh.Heard(time.Now(), on, level)
	t.mu.Unlock()
	if probing {
		t.poke() // the probe may have ended
	}
}

// sync joins the shards in want that are not joined and leaves the others.
func (t *presenceTopics) sync(want []discovery.Shard) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	var leave []*shardTopic
	for s, st := range t.joined {
		keep := false
		for _, w := range want {
			keep = keep || w == s
		}
		if !keep {
			leave = append(leave, st)
			delete(t.joined, s)
		}
	}
	var join []discovery.Shard
	for _, w := range want {
		if t.joined[w] == nil {
			join = append(join, w)
		}
	}
	t.mu.Unlock()
	for _, st := range leave {
		t.leave(st)
	}
	for _, s := range join {
		st, err := t.join(s)
		if err != nil {
			return err
		}
		t.mu.Lock()
		if t.closed || t.joined[s] != nil {
			t.mu.Unlock()
			t.leave(st)
			continue
		}
		t.joined[s] = st
		t.mu.Unlock()
	}
	return nil
}

func (t *presenceTopics) join(s discovery.Shard) (*shardTopic, error) {
	n := t.n
	name := discovery.ShardTopic(n.cfg.Network, s)
	if err := p2p.NewValidator(n.cfg.Matcher.PresenceTTL*2, n.log).Register(t.ps, name); err != nil && !strings.Contains(err.Error(), "duplicate") {
		return nil, fmt.Errorf("node: presence validator %s: %w", name, err)
	}
	t.mu.Lock()
	top := t.pubOnly[s]
	delete(t.pubOnly, s)
	t.mu.Unlock()
	if top == nil {
		var err error
		if top, err = t.ps.Join(name); err != nil {
			return nil, fmt.Errorf("node: join %s: %w", name, err)
		}
	}
	sub, err := top.Subscribe()
	if err != nil {
		_ = top.Close()
		return nil, fmt.Errorf("node: subscribe %s: %w", name, err)
	}
	ctx, stop := context.WithCancel(n.ctx)
	st := &shardTopic{shard: s, name: name, topic: top, sub: sub, done: make(chan struct{}), stop: stop}
	n.goAsync(func() {
		defer close(st.done)
		for {
			msg, err := sub.Next(ctx)
			if err != nil {
				return
			}
			select {
			case t.msgs <- shardMsg{msg, s}:
			case <-ctx.Done():
				return
			}
		}
	})
	if s.Level > 0 && n.dht != nil {
		n.goAsync(func() { t.meet(ctx, s, name, top) })
		t.mu.Lock()
		home := t.sh.Home() == s
		t.mu.Unlock()
		if home {
			n.goAsync(func() { t.meetSibling(ctx, s) })
		}
	}
	return st, nil
}

// leave stops a shard's reader, cancels its subscription and closes the
// topic (the pubsub drops the subscription on its own goroutine: Close is
// tried a few times, then left to presenceTopics.Close).
func (t *presenceTopics) leave(st *shardTopic) {
	st.stop()
	<-st.done
	t.mu.Lock()
	delete(t.emptySince, st.shard)
	t.mu.Unlock()
	st.sub.Cancel()
	for i := 0; ; i++ {
		if err := st.topic.Close(); err == nil {
			_ = t.ps.UnregisterTopicValidator(st.name)
			return
		}
		if i == 10 || t.n.ctx.Err() != nil {
			t.retire(st)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// activate tells the shard meets that the node searches: a node that never
// searched needs no shard mates (a thousand idle nodes, merging level by
// level to the root, met five peers at every level and ran out of open
// files). Loop only.
func (t *presenceTopics) activate() {
	t.searchedOnce.Do(func() { close(t.searched) })
}

// meet finds and connects peers of a shard topic through the DHT, so that
// GossipSub has a mesh for it: the rendezvous of the whole network only
// suits networks small enough to live on the root. It waits until a
// bootstrap peer answers (the DHT knows nobody before) and the node first
// searches (activate), and connects only as
// many as the topic lacks, once GossipSub has heard who of our peers joined
// it. While the topic has no peer at all it advertises and looks again
// (after 1 s, 2 s, ... then every RendezvousInterval): peers that join a
// shard together find nobody at the first lookup, and a node that cannot
// hear its shard cannot match. (It does not look again merely to have more
// peers: at a thousand nodes, the relays' provider lookups cost too much.)
// Its lookups tell follow whether anybody else is at the shard's
// rendezvous: it takes a shard empty for a Window to be silent, not deaf.
// A shard joined again (back from a call) is not advertised again within
// readvertise, nor topped up: it looks only while nobody is on the topic.
func (t *presenceTopics) meet(ctx context.Context, s discovery.Shard, ns string, top *pubsub.Topic) {
	n := t.n
	if !t.wanted(ctx) {
		return
	}
	rd := drouting.NewRoutingDiscovery(n.dht)
	t.mu.Lock()
	last, back := t.advertised[s]
	t.mu.Unlock()
	advertised := back && time.Since(last) < readvertise
	delay := meetSettle
	for first := !back; ; first = false {
		if !advertised {
			actx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, err := rd.Advertise(actx, ns)
			cancel()
			if err != nil {
				n.log.Debug("shard rendezvous advertise failed", "topic", ns, "err", err)
			}
			if advertised = err == nil; advertised {
				t.mu.Lock()
				now := time.Now()
				for old, at := range t.advertised {
					if now.Sub(at) >= readvertise {
						delete(t.advertised, old)
					}
				}
				t.advertised[s] = now
				t.mu.Unlock()
			}
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		peers := len(top.ListPeers())
		if need := n.rendezvousPeers() - peers; first && need > 0 || peers == 0 {
			fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, others, _ := n.findAndConnect(fctx, rd, ns, need, &n.metrics.shardConnects)
			cancel()
			t.mu.Lock()
			// Under t.mu: leave ends ctx, then forgets s under t.mu.
			if ctx.Err() == nil {
				if _, known := t.emptySince[s]; others > 0 {
					delete(t.emptySince, s)
				} else if others == 0 && !known {
					t.emptySince[s] = time.Now()
				}
			}
			t.mu.Unlock()
		}
		delay = min(max(2*delay, time.Second), n.cfg.RendezvousInterval)
	}
}

// meetSibling keeps connections to siblingPeers nodes of the sibling of
// home (the other half of the parent), found through the DHT as meet finds
// a shard's own. A lonely search announces on the sibling without joining
// it (see discovery, Lonely nodes), and pubsub sends such a message only to
// peers it knows joined that topic: without a connection to a node of the
// sibling, the announcement reaches nobody (at 200 nodes, a quarter of them
// did). It starts when a search at home first climbs (until then nothing
// goes to the sibling: at 300 nodes in calls, sibling meets were a third
// of the connections made while their shards merged). The sibling's nodes
// we are connected to are tagged, so that the connection manager trims
// others first; ctx ends when the node leaves home.
func (t *presenceTopics) meetSibling(ctx context.Context, home discovery.Shard) {
	n := t.n
	if !t.wanted(ctx) {
		return
	}
	for !t.climbedAt(home) {
		select {
		case <-t.climbed:
		case <-ctx.Done():
			return
		}
	}
	ns := discovery.ShardTopic(n.cfg.Network, discovery.Shard{Level: home.Level, Index: home.Index ^ 1})
	rd := drouting.NewRoutingDiscovery(n.dht)
	tagged := map[peer.ID]bool{}
	defer func() {
		for p := range tagged {
			n.h.ConnManager().UntagPeer(p, siblingTag)
		}
	}()
	pace := siblingPace{interval: n.cfg.RendezvousInterval, backoff: 1}
	delay := meetSettle
	for {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		known := map[peer.ID]bool{}
		for _, p := range t.ps.ListPeers(ns) {
			known[p] = true
			if !tagged[p] {
				n.h.ConnManager().TagPeer(p, siblingTag, siblingTagValue)
				tagged[p] = true
			}
		}
		for p := range tagged {
			if !known[p] {
				n.h.ConnManager().UntagPeer(p, siblingTag)
				delete(tagged, p)
			}
		}
		need := siblingPeers - len(known)
		var look bool
		if delay, look = pace.next(need); look {
			fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			met, _, _ := n.findAndConnect(fctx, rd, ns, need, &n.metrics.siblingConnects)
			cancel()
			delay = pace.looked(len(met))
		}
	}
}

// siblingPace paces meetSibling's lookups. A lookup that connects to
// somebody is checked meetSettle later (they say which topics they
// joined); while those it connected to do not turn out to be on the
// sibling's topic (the rendezvous also lists nodes that have since moved to
// another level, for as long as their records live), it looks again only
// after an interval that doubles each time, up to maxSiblingBackoff
// intervals. Before, it looked again at once: at 150 and 300 nodes with
// shards at two levels, sibling meets made 0.15 to 0.17 connections per
// node per second, as many as claims.
type siblingPace struct {
	interval time.Duration // RendezvousInterval
	backoff  int           // intervals to wait now, 1 to maxSiblingBackoff
	settling bool          // the last lookup connected to somebody
}

// maxSiblingBackoff bounds siblingPace's back-off, in rendezvous intervals.
const maxSiblingBackoff = 8

// next says whether to look up the sibling now (then looked says how long
// to wait after) or else how long to wait before the next check, need
// being how many more of its nodes we want.
func (p *siblingPace) next(need int) (time.Duration, bool) {
	settled := p.settling
	p.settling = false
	if need <= 0 {
		p.backoff = 1
		return p.interval, false
	}
	if settled {
		// Those the last lookup found are not (all) on the topic.
		p.backoff = min(2*p.backoff, maxSiblingBackoff)
		return time.Duration(p.backoff) * p.interval, false
	}
	return 0, true
}

// looked returns how long to wait after a lookup that connected to met
// nodes.
func (p *siblingPace) looked(met int) time.Duration {
	if met > 0 {
		p.settling = true
		return meetSettle // see whether they joined the sibling's topic
	}
	return p.interval * time.Duration(p.backoff)
}

// climbedAt reports whether home is our home and a lonely search there has
// climbed.
func (t *presenceTopics) climbedAt(home discovery.Shard) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sh.Climbed() && t.sh.Home() == home
}

// siblingPeers is how many nodes of the sibling shard a node keeps
// connections to; siblingTag and siblingTagValue tag them in the connection
// manager (GossipSub tags its mesh peers 20).
const (
	siblingPeers    = 2
	siblingTag      = "serendip-sibling"
	siblingTagValue = 10
)

// wanted waits until a meet is worth making: a bootstrap peer answered (the
// DHT knows nobody before) and the node searched (activate). It reports
// false if ctx ended first.
func (t *presenceTopics) wanted(ctx context.Context) bool {
	for _, ready := range []<-chan struct{}{t.n.online, t.searched} {
		select {
		case <-ready:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// readvertise: a shard joined again (back from a call, see follow) within
// this long of its last advertisement is not advertised again (a record
// lives 48 h in the DHT; relays restart).
const readvertise = 10 * time.Minute

// meetSettle is how long meet lets the peers we are connected to tell us
// that they joined a shard topic before it counts them.
const meetSettle = 500 * time.Millisecond

// readShardLevel returns the level saved in dir, or -1 if there is none.
func readShardLevel(dir string) int {
	if dir == "" {
		return -1
	}
	b, err := os.ReadFile(filepath.Join(dir, shardLevelFile))
	if err != nil {
		return -1
	}
	l, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || l < 0 || l > discovery.MaxShardLevel {
		return -1
	}
	return l
}

func writeShardLevel(dir string, level int, n *Node) {
	if dir == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, shardLevelFile), []byte(strconv.Itoa(level)+"\n"), 0o600); err != nil {
		n.log.Debug("shard level not saved", "err", err)
	}
}
