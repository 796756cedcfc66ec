package node

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"

	"serendip/discovery"
	"serendip/discovery/p2p"
	"serendip/internal/bootstrap"
	"serendip/internal/limit"
	"serendip/media"
)

// Config configures a node.
type Config struct {
	// Network names the Serendip network; topics and rendezvous derive from it.
	Network string
	// Bootstrap peers to join through (relays, or the public IPFS peers).
	Bootstrap []peer.AddrInfo
	// DataDir keeps the blocklist; empty keeps nothing.
	DataDir string
	// VideoFile (IVF, VP8) and AudioFile (Ogg, Opus) are looped as camera and
	// microphone; empty sends no such track.
	VideoFile, AudioFile string
	// TextOnly makes the node a text bot: its calls carry the chat channel
	// only (no camera, no page's media, so no browser bridge), which spares
	// it the tracks' and pion's per-call machinery. A partner's media still
	// arrives (and may be recorded).
	TextOnly bool
	// RecordDir, if set, receives one IVF and one Ogg file per call.
	RecordDir string
	// Auto searches at launch and again after every call (a bot).
	Auto bool
	// CallTime, if positive, hangs up (Next) that long after media connects.
	CallTime time.Duration
	// CallTimeSpread makes each call last a length in [CallTime/2,
	// 3·CallTime/2) taken from the match id (uniform, mean CallTime; both
	// partners take the same), as people's calls vary and the simulator's
	// do; otherwise every call lasts CallTime.
	CallTimeSpread bool
	// Interests are the tags the node searches with (normalised by New).
	Interests []string
	// MDNS finds peers on the LAN.
	MDNS bool
	// DHTMode is the node's DHT mode: by default a server until AutoNAT
	// finds it unreachable, then a client.
	DHTMode dht.ModeOpt
	// RendezvousInterval is how often the DHT rendezvous is refreshed.
	RendezvousInterval time.Duration
	// ShardTarget is how many presence messages a shard should carry per
	// announce interval (discovery.ShardConfig.Target); 0 keeps
	// discovery.DefaultShardConfig's.
	ShardTarget int
	// LonelyWait, if set, is how long a search may have nobody to claim
	// before it also listens and announces on the parent shard
	// (discovery.ShardConfig.LonelyWait; 0: its default).
	LonelyWait time.Duration
	// StartShardLevel is the presence shard level a node with no level
	// saved in DataDir starts at, without probing (a node that ran before
	// starts at the level it saved); 0 starts at the root and probes.
	StartShardLevel int
	// MeshDegree is GossipSub's D, the mesh peers a node keeps per presence
	// topic (each message arrives about this many times); 0 keeps
	// GossipSub's 6.
	MeshDegree int
	// NoGossip turns GossipSub's gossip off (the message ids a node sends
	// peers outside its mesh, so that they can ask for what the mesh lost):
	// where nothing is lost, a cost for nothing.
	NoGossip bool
	// Matcher and Media configure the parts.
	Matcher discovery.Config
	Media   media.EngineConfig
	// Seed seeds the matcher's randomness; 0 draws one from crypto/rand.
	Seed   uint64
	Logger *slog.Logger

	// BridgeLoopbackOnly makes the browser bridge (the page's media, used when
	// there are no media files) offer loopback candidates only; the browser
	// then needs --allow-loopback-in-peer-connection (tests).
	BridgeLoopbackOnly bool
	// Greeting, if set, is said in chat as soon as a call's chat channel is
	// open (a demo bot).
	Greeting string
	// Mirror sends every stranger their own video and sound back and echoes
	// their chat (a demo bot). It takes the place of media files and bridge.
	Mirror bool
}

// DefaultConfig is for a node on the internet.
func DefaultConfig() Config {
	c := Config{
		Network:            "main",
		MDNS:               true,
		DHTMode:            dht.ModeAutoServer,
		RendezvousInterval: time.Minute,
		Matcher:            discovery.DefaultConfig(),
		Media:              media.DefaultEngineConfig(),
	}
	// A claim to a peer we are not connected to dials it first (through a
	// relay and a hole punch, behind NAT); the node reports ClaimSent.
	c.Matcher.ConnectTimeout = 5 * time.Second
	return c
}

// LocalConfig is for many nodes on one machine: fast timers, loopback media,
// no mDNS, DHT client mode.
func LocalConfig() Config {
	c := DefaultConfig()
	c.MDNS = false
	// On loopback every node would pass for a DHT server; the relays serve.
	c.DHTMode = dht.ModeClient
	c.RendezvousInterval = 5 * time.Second
	c.Matcher = discovery.LocalConfig()
	// No extra time to connect: on loopback a dial is quick unless the
	// machine is overloaded, and then a claim that waits longer keeps its
	// claimer (and every claim held behind it) waiting too: at 1,000 nodes
	// with 3 s more, a quarter fewer calls (512 against 688 in 120 s) and
	// time to match p50 20.5 s against 11.4 s.
	c.Matcher.ConnectTimeout = 0
	c.Media = media.LoopbackEngineConfig()
	// Hundreds of nodes share one machine's cores: presence announced every
	// 2 s (searches that end sooner announce only their start and end, and
	// most searches that claim a waiting peer announce nothing), shards of
	// about 16 messages per announcement interval and a thin mesh carry
	// each presence to fewer nodes, fewer times. On loopback nothing is
	// lost that a wider mesh would save. Smaller shards cost less but keep
	// a waiting node waiting longer for the next newcomer (8: time to
	// match p50 178 ms, p99 2.3 s at 200 nodes; 16: p99 1.47-1.62 s in
	// three runs). 24 keeps 200 nodes in shards of about 25 (level 3)
	// instead of splitting a third of them into shards of 12, where the
	// next newcomer takes twice as long: p99 1.21 and 1.27 s, at 76-78 %
	// of both cores against 65-71 %; 32 puts them in shards of 50 (p50
	// 227 ms, p99 2.0 s, 94 %).
	c.Matcher.AnnounceInterval = 2 * time.Second
	c.Matcher.PresenceTTL = 8 * time.Second
	// Presence crosses a loaded machine in tens of milliseconds: pair
	// sooner than discovery.LocalConfig (100 ms, 400 ms).
	c.Matcher.ClaimJitter = 60 * time.Millisecond
	c.Matcher.PairWait = 200 * time.Millisecond
	c.ShardTarget = 24
	// A waiting node climbs to the parent shard sooner than on the
	// internet (1 s): 200 nodes, time to match p99 1.2-1.6 s against
	// 1.4-1.8 s (200 ms: 3.8 s, joining topics costs too much).
	c.LonelyWait = 400 * time.Millisecond
	c.MeshDegree = 3
	// On loopback nothing is lost that gossip would recover. Without it,
	// 100 nodes in 3-s data calls took 10 and 12 % less CPU (each run side
	// by side with one with gossip) and 200 nodes with file media 8 % less
	// (204 and 206 s against 222 and 224 s); time to match within the
	// runs' spread (p50 167 and 107 ms against 166 and 208 ms).
	c.NoGossip = true
	return c
}

// Validate reports a configuration error.
func (c Config) Validate() error {
	if c.Network == "" {
		return errors.New("node: empty network name")
	}
	if c.RendezvousInterval <= 0 {
		return errors.New("node: rendezvous interval must be positive")
	}
	if c.StartShardLevel < 0 || c.StartShardLevel > discovery.MaxShardLevel {
		return fmt.Errorf("node: start shard level %d not in [0, %d]", c.StartShardLevel, discovery.MaxShardLevel)
	}
	if c.MeshDegree < 0 {
		return errors.New("node: negative mesh degree")
	}
	if c.CallTime < 0 {
		return errors.New("node: negative call time")
	}
	if err := c.Matcher.Validate(); err != nil {
		return fmt.Errorf("node: matcher: %w", err)
	}
	if err := c.ShardConfig().Validate(); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if c.TextOnly && (c.VideoFile != "" || c.AudioFile != "" || c.Mirror) {
		return errors.New("node: a text-only node sends no media: no media files, no mirror")
	}
	if c.Mirror && (c.VideoFile != "" || c.AudioFile != "") {
		return errors.New("node: a mirror sends back what it gets; it takes no media files")
	}
	if len(c.Greeting) > media.MaxChatSize {
		return fmt.Errorf("node: greeting longer than %d bytes", media.MaxChatSize)
	}
	if c.VideoFile != "" {
		if err := media.CheckVideoFile(c.VideoFile); err != nil {
			return err
		}
	}
	if c.AudioFile != "" {
		if err := media.CheckAudioFile(c.AudioFile); err != nil {
			return err
		}
	}
	return nil
}

// Node is a running Serendip node on a host it does not own.
type Node struct {
	h      host.Host
	cfg    Config
	log    *slog.Logger
	dht    *dht.IpfsDHT
	ps     *pubsub.PubSub
	topic  *presenceTopics // sharded presence (shard.go)
	sub    *presenceSub
	claims *p2p.ClaimServer
	mdns   mdns.Service
	engine *media.Engine
	blocks *blocklist
	bridge *media.Bridge   // the page's media; nil with media files, Mirror or TextOnly
	hub    *hub            // events for the page
	online <-chan struct{} // closed once a bootstrap peer answered (startNetwork)

	signalLimit *limit.PerPeer
	metrics     metrics
	turn        turnCreds

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	inbox  chan func()
	once   sync.Once

	// Owned by the loop goroutine.
	m        *discovery.Matcher
	queue    []discovery.Event
	stepping bool
	// shardSaw is the matcher's searching and lonely state the presence
	// shards last heard of (see step).
	shardSaw [2]bool
	replies  map[replyKey]chan discovery.Reply
	call     *call
	seq      uint64
	calls    int
	last     media.Stats
	lastEnd  string
	history  []CallRecord
	lastPath string // media path of the last call
	// searchSince is when the current search began (zero when not searching).
	searchSince time.Time
	// interests are the tags of the latest Start, sent to each partner.
	interests []string
}

type replyKey struct {
	from peer.ID
	id   discovery.MatchID
}

// New starts a node on h. The node searches at once if cfg.Auto is set.
func New(h host.Host, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Interests = discovery.NormalizeInterests(cfg.Interests)
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = crand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	m, err := discovery.NewMatcher(discovery.PeerID(h.ID()), cfg.Matcher, rand.New(rand.NewPCG(seed, seed>>1|1)))
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if cfg.Media.Logger == nil {
		cfg.Media.Logger = log.With("part", "media")
	}
	cfg.Media.TextOnly = cfg.Media.TextOnly || cfg.TextOnly
	n := &Node{turn: turnCreds{byPeer: make(map[peer.ID]media.TURNCredentials)}}
	if cfg.Media.ICEServersFunc == nil {
		cfg.Media.ICEServersFunc = n.iceServers
	}
	engine, err := media.NewEngine(cfg.Media)
	if err != nil {
		return nil, fmt.Errorf("node: media: %w", err)
	}
	blocks, err := loadBlocklist(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.h, n.cfg, n.log, n.engine, n.blocks, n.m = h, cfg, log, engine, blocks, m
	n.signalLimit = limit.NewPerPeer(4, 8)
	n.ctx, n.cancel = ctx, cancel
	n.inbox = make(chan func(), 256)
	n.replies = make(map[replyKey]chan discovery.Reply)
	n.hub, n.interests = newHub(), cfg.Interests
	if cfg.VideoFile == "" && cfg.AudioFile == "" && !cfg.Mirror && !cfg.TextOnly {
		n.bridge, err = media.NewBridge(media.BridgeConfig{
			LoopbackOnly: cfg.BridgeLoopbackOnly,
			Logger:       log.With("part", "bridge"),
		})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("node: bridge: %w", err)
		}
	}
	if err := n.startNetwork(); err != nil {
		n.Close()
		return nil, err
	}
	for _, p := range blocks.list() {
		n.step(discovery.Block{Peer: discovery.PeerID(p)})
	}
	if cfg.Auto {
		n.step(discovery.Start{Interests: cfg.Interests})
	}
	n.wg.Add(1)
	go n.run()
	return n, nil
}

// ShardConfig is the sharder's configuration: the defaults for the matcher,
// with ShardTarget and LonelyWait if set.
func (c Config) ShardConfig() discovery.ShardConfig {
	sc := discovery.DefaultShardConfig(c.Matcher)
	if c.ShardTarget != 0 {
		sc.Target = c.ShardTarget
	}
	if c.LonelyWait != 0 {
		sc.LonelyWait = c.LonelyWait
	}
	return sc
}

// meshParams are GossipSub's defaults with a mesh of d peers (at least 2).
func meshParams(d int) pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.D = d
	p.Dlo = max(1, d-1)
	p.Dhi = 2 * d
	p.Dscore = min(p.Dscore, p.Dlo)
	p.Dout = max(0, min(p.Dout, p.Dlo-1, d/2-1)) // GossipSub wants Dout < Dlo and Dout < D/2
	p.Dlazy = d
	return p
}

// startNetwork joins the DHT, the presence topic and registers the protocols.
func (n *Node) startNetwork() error {
	var err error
	n.dht, err = dht.New(n.h, dht.Mode(n.cfg.DHTMode), dht.BootstrapPeers(n.cfg.Bootstrap...))
	if err != nil {
		return fmt.Errorf("node: dht: %w", err)
	}
	psOpts := []pubsub.Option{pubsub.WithMaxMessageSize(64 << 10)}
	gp := pubsub.DefaultGossipSubParams()
	if d := n.cfg.MeshDegree; d > 0 {
		gp = meshParams(d)
	}
	if n.cfg.NoGossip {
		gp.Dlazy, gp.GossipFactor = 0, 0
	}
	psOpts = append(psOpts, pubsub.WithGossipSubParams(gp))
	if n.ps, err = pubsub.NewGossipSub(n.ctx, n.h, psOpts...); err != nil {
		return fmt.Errorf("node: gossipsub: %w", err)
	}
	connected := make(chan struct{}) // closed once a bootstrap peer answers
	n.online = connected
	if n.topic, n.sub, err = n.joinPresence(); err != nil {
		return err
	}
	hold := n.cfg.Matcher.HoldTimeout + time.Second
	n.claims = p2p.ServeClaims(n.h, n.handleClaim, n.replyFailed, hold, 10, n.log)
	n.h.SetStreamHandler(SignalProtocol, n.handleSignalStream)

	n.wg.Add(4)
	go func() {
		defer n.wg.Done()
		n.fetchTURN(connected)
	}()
	go func() {
		defer n.wg.Done()
		bootstrap.Connect(n.ctx, n.h, n.cfg.Bootstrap, n.log, connected)
	}()
	go func() {
		defer n.wg.Done()
		n.rendezvous(connected)
	}()
	go func() {
		defer n.wg.Done()
		n.readPresence()
	}()
	if n.cfg.MDNS {
		n.mdns = mdns.NewMdnsService(n.h, "serendip-"+n.cfg.Network, mdnsNotifee{n})
		if err := n.mdns.Start(); err != nil {
			n.log.Warn("mdns not started", "err", err)
		}
	}
	return nil
}

// run is the loop: it owns the matcher and the call.
func (n *Node) run() {
	defer n.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wake := n.m.Status().NextWake
		d := time.Hour
		if !wake.IsZero() {
			d = max(time.Until(wake), time.Millisecond)
		}
		timer.Reset(d)
		select {
		case <-n.ctx.Done():
			if n.call != nil {
				n.endCall(n.call, "stop", true, false)
			}
			return
		case f := <-n.inbox:
			began := time.Now()
			f()
			if d := time.Since(began); d > slowStep {
				n.metrics.slowSteps.Add(1)
				n.log.Debug("slow loop step", "took", d)
			}
		case <-timer.C:
			n.step(discovery.Tick{})
		}
	}
}

// slowStep: a loop step that takes longer is counted (Metrics.SlowSteps)
// and logged (debug): every claim, signal and state read of the node waits
// behind it.
const slowStep = 100 * time.Millisecond

// post hands f to the loop. It reports false once the node is closing.
func (n *Node) post(f func()) bool {
	select {
	case n.inbox <- f:
		return true
	case <-n.ctx.Done():
		return false
	}
}

// query runs f on the loop and waits for it.
func (n *Node) query(f func()) error {
	done := make(chan struct{})
	if !n.post(func() { f(); close(done) }) {
		return ErrClosed
	}
	select {
	case <-done:
		return nil
	case <-n.ctx.Done():
		return ErrClosed
	}
}

// goAsync runs f on a goroutine the node waits for on Close.
func (n *Node) goAsync(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// step feeds an event to the matcher and carries out its actions. Events
// raised while carrying them out are queued, never nested. Loop only.
func (n *Node) step(ev discovery.Event) {
	n.queue = append(n.queue, ev)
	if n.stepping {
		return
	}
	n.stepping = true
	defer func() { n.stepping = false }()
	for len(n.queue) > 0 {
		ev := n.queue[0]
		n.queue = n.queue[1:]
		for _, a := range n.m.Step(time.Now(), ev) {
			n.apply(a)
		}
	}
	// A search that turns lonely starts its climb (see discovery, Lonely
	// nodes) now, not at the shards' next look (up to a second later: at
	// 200 nodes that was most of the slowest searches).
	st := n.m.Status()
	saw := [2]bool{st.State.Searching(), st.Lonely}
	if saw != n.shardSaw {
		n.shardSaw = saw
		n.topic.poke()
	}
}

// apply carries out one matcher action. Loop only; never blocks.
func (n *Node) apply(a discovery.Action) {
	switch a := a.(type) {
	case discovery.Announce:
		n.announce(a)
	case discovery.SendClaim:
		n.sendClaim(a.To, a.Claim)
	case discovery.SendReply:
		key := replyKey{peer.ID(a.To), a.Reply.ID}
		if ch, ok := n.replies[key]; ok {
			ch <- a.Reply
			delete(n.replies, key)
		}
	case discovery.Matched:
		n.startCall(peer.ID(a.Peer), a.ID, a.Offerer)
	case discovery.EndCall:
		if c := n.call; c != nil && c.id == a.ID {
			n.endCall(c, a.Reason, true, false)
		} else {
			n.strayBye(peer.ID(a.Peer), a.ID, a.Reason)
		}
	case discovery.StateChanged:
		n.log.Debug("matcher", "from", a.From, "to", a.To)
		n.hub.poke()
		switch {
		case a.To == discovery.StateIdle:
			n.searchSince = time.Time{}
		case a.From == discovery.StateIdle || a.From == discovery.StateMatched:
			n.searchSince = time.Now()
			n.topic.activate()
		}
	default:
		n.log.Debug("unknown matcher action", "action", fmt.Sprintf("%T", a))
	}
}

// sendClaim sends the matcher's claim on its own goroutine. Loop only.
func (n *Node) sendClaim(to discovery.PeerID, c discovery.Claim) {
	mc := n.cfg.Matcher
	// The claim's deadline: ClaimTimeout, or longer where the matcher
	// measured slow round trips (discovery's package doc, Round trips).
	wait := mc.ConnectTimeout + mc.ClaimTimeout
	if d := time.Until(n.m.Status().ClaimDeadline); d > wait {
		wait = d
	}
	n.goAsync(func() {
		// A little longer than the matcher's own timeouts, so that a late
		// accept still arrives and the matcher can call the match off.
		ctx, cancel := context.WithTimeout(n.ctx, wait+time.Second)
		defer cancel()
		n.metrics.claimsSent.Add(1)
		connected := n.h.Network().Connectedness(peer.ID(to)) == network.Connected
		if !connected {
			n.metrics.claimDials.Add(1)
		}
		began := time.Now()
		sent := func() { n.post(func() { n.step(discovery.ClaimSent{To: to, ID: c.ID}) }) }
		r, err := p2p.SendClaim(ctx, n.h, peer.ID(to), c, wait-mc.ConnectTimeout+time.Second, sent)
		if err != nil {
			n.log.Debug("claim failed", "peer", peer.ID(to), "err", err)
			n.post(func() { n.step(discovery.ClaimFailed{To: to, ID: c.ID}) })
			return
		}
		n.log.Debug("claim answered", "peer", peer.ID(to), "verdict", r.Verdict, "took", time.Since(began), "dialed", !connected)
		n.post(func() { n.step(discovery.ReplyReceived{From: to, Reply: r}) })
	})
}

// handleClaim runs on a claim stream's goroutine: it gives the claim to the
// matcher and waits for the matcher's reply (which wait-die may delay).
func (n *Node) handleClaim(ctx context.Context, from peer.ID, c discovery.Claim) (discovery.Reply, bool) {
	n.metrics.claimsReceived.Add(1)
	key := replyKey{from, c.ID}
	ch := make(chan discovery.Reply, 1)
	if !n.post(func() {
		if _, dup := n.replies[key]; dup {
			return // the same claim twice at once: let the first answer
		}
		n.replies[key] = ch
		n.step(discovery.ClaimReceived{From: discovery.PeerID(from), Claim: c})
	}) {
		return discovery.Reply{}, false
	}
	began := time.Now()
	select {
	case r := <-ch:
		if d := time.Since(began); d > slowStep {
			n.log.Debug("claim answered late", "peer", from, "verdict", r.Verdict, "took", d)
		}
		return r, true
	case <-ctx.Done():
		n.post(func() {
			if n.replies[key] == ch {
				delete(n.replies, key)
			}
		})
		return discovery.Reply{}, false
	}
}

// replyFailed hears that a reply never reached its claimer. After an
// accept, the match is one-sided: end it rather than wait for the setup
// timeout.
func (n *Node) replyFailed(from peer.ID, r discovery.Reply) {
	if r.Verdict != discovery.Accept {
		return
	}
	n.post(func() {
		if c := n.call; c != nil && c.id == r.ID && c.peer == from {
			n.endCall(c, "claimer gone", false, true)
		}
	})
}

// Close ends the current call (with a bye), leaves the network services and
// waits for every goroutine. It does not close the host. Idempotent.
func (n *Node) Close() error {
	n.once.Do(func() {
		n.cancel()
		if n.claims != nil {
			n.claims.Close()
		}
		n.h.RemoveStreamHandler(SignalProtocol)
		if n.mdns != nil {
			_ = n.mdns.Close()
		}
		if n.sub != nil {
			n.sub.Cancel()
		}
		n.wg.Wait()
		if n.topic != nil {
			_ = n.topic.Close()
		}
		if n.dht != nil {
			_ = n.dht.Close()
		}
		if n.bridge != nil {
			_ = n.bridge.Close()
		}
	})
	return nil
}

// Host returns the node's libp2p host.
func (n *Node) Host() host.Host { return n.h }

type mdnsNotifee struct{ n *Node }

func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == m.n.h.ID() {
		return
	}
	m.n.goAsync(func() {
		ctx, cancel := context.WithTimeout(m.n.ctx, 10*time.Second)
		defer cancel()
		if err := m.n.h.Connect(ctx, ai); err != nil {
			m.n.log.Debug("mdns peer unreachable", "peer", ai.ID, "err", err)
		}
	})
}
