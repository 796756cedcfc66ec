package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"serendip/discovery"
	"serendip/node"
	"serendip/relay"
)

// inproc runs every relay and node in this process, each on its own libp2p
// host on 127.0.0.1. The hosts are lighter than the node command's (TCP and
// Noise only, no relay transport, no resource manager, no Prometheus) so
// that a thousand fit in one process; the node on top is the real one.
type inproc struct {
	cfg     Config
	log     *slog.Logger
	bw      *metrics.BandwidthCounter // every node host's traffic
	relayBW *metrics.BandwidthCounter

	mu     sync.Mutex
	relays []*inprocRelay
	boot   []peer.AddrInfo
	// closing counts killed nodes still closing.
	closing sync.WaitGroup
	// connsIn and connsOut count the connections the node hosts accepted
	// and dialled.
	connsIn, connsOut atomic.Uint64
	// sigBase is sharedSignatureChecks when the run started.
	sigBase uint64
	// connLow and connHigh are the node hosts' connection manager marks.
	connLow, connHigh int
}

type inprocRelay struct {
	h host.Host
	r *relay.Relay
}

func newInproc(cfg Config, fdLimit uint64) *inproc {
	shareSignatureChecks()
	low, high := nodeConnLimits(cfg.Nodes, fdLimit)
	if high < nodeConnHigh && cfg.Logger != nil {
		cfg.Logger.Info("node connection managers keep fewer peers for the open file limit",
			"low", low, "high", high, "file_limit", fdLimit)
	}
	return &inproc{
		cfg: cfg, log: cfg.Logger,
		connLow: low, connHigh: high,
		bw:      metrics.NewBandwidthCounter(),
		relayBW: metrics.NewBandwidthCounter(),
		sigBase: sharedSignatureChecks(),
	}
}

func (p *inproc) mode() string { return "in-process" }

// newHost is a libp2p host on a random loopback TCP port.
func newHost(bw metrics.Reporter, extra ...libp2p.Option) (host.Host, error) {
	opts := []libp2p.Option{
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableMetrics(),
		libp2p.BandwidthReporter(bw),
	}
	return libp2p.New(append(opts, extra...)...)
}

func (p *inproc) startRelays(ctx context.Context, n int) error {
	for i := range n {
		// libp2p's default connection manager trims a host to 160
		// connections once it has 192: a relay that serves more nodes
		// must keep them all (the relay command does not yet; see the
		// package doc).
		cm, err := connmgr.NewConnManager(2*p.cfg.Nodes+160, 4*p.cfg.Nodes+192)
		if err != nil {
			return fmt.Errorf("%w: relay connection manager: %w", ErrLaunch, err)
		}
		h, err := newHost(p.relayBW, libp2p.ForceReachabilityPublic(), libp2p.ConnectionManager(cm))
		if err != nil {
			return fmt.Errorf("%w: relay host: %w", ErrLaunch, err)
		}
		rc := relay.DefaultConfig()
		rc.Network = p.cfg.Network
		rc.Bootstrap = p.boot // every relay joins the ones before it
		rc.Logger = p.log.With("relay", i)
		r, err := relay.New(h, rc)
		if err != nil {
			h.Close()
			return fmt.Errorf("%w: relay: %w", ErrLaunch, err)
		}
		p.mu.Lock()
		p.relays = append(p.relays, &inprocRelay{h: h, r: r})
		p.boot = append(p.boot, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
		p.mu.Unlock()
	}
	return nil
}

func (p *inproc) launch(ctx context.Context, spec nodeSpec) (member, error) {
	cm, err := connmgr.NewConnManager(p.connLow, p.connHigh, connmgr.WithGracePeriod(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("%w: node connection manager: %w", ErrLaunch, err)
	}
	h, err := newHost(p.bw, libp2p.ConnectionManager(cm))
	if err != nil {
		return nil, fmt.Errorf("%w: node host: %w", ErrLaunch, err)
	}
	h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if c.Stat().Direction == network.DirOutbound {
			p.connsOut.Add(1)
		} else {
			p.connsIn.Add(1)
		}
	}})
	nc := node.LocalConfig()
	nc.Network = p.cfg.Network
	p.mu.Lock()
	nc.Bootstrap = append([]peer.AddrInfo(nil), p.boot...)
	p.mu.Unlock()
	// A DHT client, as a node behind NAT is on the internet (AutoNAT finds
	// it unreachable); on loopback nothing tells the node that, and a
	// thousand DHT servers in one process would measure the DHT instead
	// of Serendip. The relays are the DHT servers.
	nc.DHTMode = dht.ModeClient
	if p.cfg.ShardTarget > 0 {
		nc.ShardTarget = p.cfg.ShardTarget
	}
	nc.StartShardLevel = startShardLevel(p.cfg.Nodes, nc.ShardTarget, presencePerNode(p.cfg.CallTime, nc.Matcher.AnnounceInterval))
	nc.Auto = spec.auto
	nc.CallTime = spec.callTime
	nc.CallTimeSpread = p.cfg.CallSpread
	nc.Seed = spec.seed
	// Without files a bot has no camera and no page: a text bot, whose
	// calls carry no track (a person's node would forward its page's).
	nc.TextOnly = p.cfg.Media != MediaFiles
	if p.cfg.Media == MediaFiles {
		nc.VideoFile, nc.AudioFile = p.cfg.VideoFile, p.cfg.AudioFile
	}
	if p.cfg.NodeLogger != nil {
		nc.Logger = p.cfg.NodeLogger.With("node", spec.index)
	}
	n, err := node.New(h, nc)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("%w: node %d: %w", ErrLaunch, spec.index, err)
	}
	return &inprocNode{n: n, h: h, id: h.ID().String(), closing: &p.closing}, nil
}

// nodeConnLimits are the node hosts' connection manager marks: trim to low
// connections once past high. Every idle connection costs a node
// goroutines and keepalives, and claims dial peers all the time: 16 past 32
// (the mesh peers, tagged by GossipSub, and the relays, protected, stay).
// At 200 nodes over 120 s the libp2p default (160 past 192) let a node
// gather 40 to 66 peers and the machine's load rose from 74 % to 90 % of
// both cores. Where this process may open too few files for that (a
// connection between two nodes holds a descriptor at each end; a node
// also holds its listener, its relay connection, the relay's end of it and
// its calls' UDP sockets), high is what three quarters of the limit
// allows, and low half of it: at 1,000 nodes and 20,000 files, 9 and 4.
func nodeConnLimits(nodes int, fdLimit uint64) (low, high int) {
	high = nodeConnHigh
	if fdLimit > 0 && nodes > 0 {
		const perNodeOther = 6
		high = min(high, max(int(fdLimit*3/4)/nodes-perNodeOther, 6))
	}
	return max(high/2, 3), high
}

// nodeConnHigh is the node hosts' high mark where files are plenty.
const nodeConnHigh = 32

// startShardLevel is the presence shard level a node of a network of n
// nodes would have saved from an earlier run, each node sending perNode
// presence messages per announce interval (presencePerNode): a shard of
// 2^-level of the network carries n·perNode/2^level of them, and the
// level that keeps that near target is log2(n·perNode/target). Starting
// there, as the simulator's nodes do, spares a network that starts all at
// once from announcing everything on the root topic, where every node
// would hear every node until the sharders split (at a thousand nodes,
// more than two cores can carry).
func startShardLevel(n, target int, perNode float64) int {
	if target <= 0 {
		target = discovery.DefaultShardConfig(discovery.LocalConfig()).Target
	}
	load := float64(n) * perNode
	l := 0
	for l < discovery.MaxShardLevel && load >= float64(target<<(l+1)) {
		l++
	}
	return l
}

// presencePerNode is about how many presence messages per announce
// interval ai a bot sends whose calls last callTime: a search's start and
// end (two; searches are short), once per call and about a second of
// search and setup, at most one per interval (a bot that waits longer
// than ai announces once per interval). With 3-s calls and ai 2 s, one; with
// 30-s calls, an eighth: a thousand such nodes start at level 2 instead of
// 5, and do not merge three levels as their shards turn out quiet, each
// merge a round of meets.
func presencePerNode(callTime, ai time.Duration) float64 {
	if callTime <= 0 || ai <= 0 {
		return 1
	}
	return min(1, 2*ai.Seconds()/(callTime.Seconds()+1))
}

func (p *inproc) traffic() (classBytes, bool) {
	out := classBytes{}
	for proto, s := range p.bw.GetBandwidthByProtocol() {
		c := protocolClass(string(proto))
		v := out[c]
		v.In += uint64(s.TotalIn)
		v.Out += uint64(s.TotalOut)
		out[c] = v
	}
	return out, true
}

func (p *inproc) relayTraffic() (uint64, uint64, bool) {
	t := p.relayBW.GetBandwidthTotals()
	return uint64(t.TotalIn), uint64(t.TotalOut), true
}

func (p *inproc) connections() (uint64, uint64, bool) {
	return p.connsIn.Load(), p.connsOut.Load(), true
}

func (p *inproc) sharedSignatureChecks() uint64 { return sharedSignatureChecks() - p.sigBase }

func (p *inproc) rss() (int64, bool) {
	m, err := readProcStatus("self")
	if err != nil {
		return 0, false
	}
	return m.rss, true
}

func (p *inproc) close() error {
	// Killed nodes close in the background; give them a while.
	done := make(chan struct{})
	go func() {
		p.closing.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeTimeout):
		p.log.Warn("killed nodes still closing", "after", closeTimeout)
	}
	p.mu.Lock()
	relays := p.relays
	p.relays = nil
	p.mu.Unlock()
	var errs []error
	for _, r := range relays {
		errs = append(errs, r.r.Close(), r.h.Close())
	}
	return errors.Join(errs...)
}

// inprocNode is a node.Node on its own host.
type inprocNode struct {
	n       *node.Node
	h       host.Host
	id      string
	once    sync.Once
	closing *sync.WaitGroup
}

func (m *inprocNode) PeerID() string { return m.id }

func (m *inprocNode) State(ctx context.Context) (node.State, error) {
	return within(ctx, m.n.State)
}

func (m *inprocNode) History(ctx context.Context) ([]node.CallRecord, error) {
	return within(ctx, m.n.History)
}

func (m *inprocNode) Metrics(context.Context) (node.Metrics, bool) { return m.n.Metrics(), true }

func (m *inprocNode) Start(ctx context.Context) error {
	_, err := within(ctx, func() (struct{}, error) { return struct{}{}, m.n.Start(nil) })
	return err
}

// chatter is a node that can send chat (node.Node.SendChat, where the node
// has it).
type chatter interface{ SendChat(text string) error }

func (m *inprocNode) Chat(ctx context.Context, text string) error {
	c, ok := any(m.n).(chatter)
	if !ok {
		return errNoChat
	}
	_, err := within(ctx, func() (struct{}, error) { return struct{}{}, c.SendChat(text) })
	return err
}

func (m *inprocNode) Next(ctx context.Context) error {
	_, err := within(ctx, func() (struct{}, error) { return struct{}{}, m.n.Next() })
	return err
}

// Kill closes the host first, so every connection drops with no bye, and
// only then the node, whose goodbyes find no connection left. The node
// closes in the background (its loop and Pion session outlive the host
// until then, as a killed process's would not).
func (m *inprocNode) Kill() error {
	var err error
	m.once.Do(func() {
		err = m.h.Close()
		m.closing.Add(1)
		go func() {
			defer m.closing.Done()
			_ = m.n.Close()
		}()
	})
	return err
}

func (m *inprocNode) Close() error {
	var err error
	m.once.Do(func() {
		err = errors.Join(m.n.Close(), m.h.Close())
	})
	return err
}

func (m *inprocNode) Usage() (procUsage, bool) { return procUsage{}, false }

// settle waits until cond holds or d passes, polling every 100 ms.
func settle(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	return true
}
