package node

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	lpdisc "github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	ma "github.com/multiformats/go-multiaddr"

	"serendip/discovery"
	"serendip/discovery/p2p"
)

// maxPresenceAddrs bounds the addresses a presence message carries.
const maxPresenceAddrs = 8

// announce publishes a presence message on the shards the sharder picks
// (see shard.go). Loop only; the publish itself runs on its own goroutine.
func (n *Node) announce(a discovery.Announce) {
	// Sequence numbers start from the clock so a restarted node (same peer
	// id) is not taken for a replay.
	n.seq = max(n.seq+1, uint64(time.Now().UnixNano()))
	var addrs [][]byte
	for _, a := range n.h.Addrs() {
		if len(addrs) == maxPresenceAddrs {
			break
		}
		addrs = append(addrs, a.Bytes())
	}
	shards, level := n.topic.targets(a)
	if len(shards) == 0 {
		return // the sharder still probes its level: it announces when done
	}
	p := a.Presence(n.seq, addrs)
	p.Level = level
	b, err := p.Marshal()
	if err != nil {
		n.log.Warn("presence not published", "err", err)
		return
	}
	n.goAsync(func() {
		ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
		defer cancel()
		for _, s := range shards {
			t, err := n.topic.topicFor(s)
			if err != nil {
				if n.ctx.Err() == nil {
					n.log.Debug("presence topic not opened", "shard", s, "err", err)
				}
				continue
			}
			if len(t.ListPeers()) == 0 {
				// Nobody we are connected to is on this shard's topic: the
				// message would reach nobody, so signing it (and checking
				// our own signature, as pubsub does) is wasted. Common on
				// the ancestors and the sibling.
				n.metrics.presenceUnsent.Add(1)
				continue
			}
			n.metrics.presenceSent.Add(1)
			if err := t.Publish(ctx, b); err != nil && n.ctx.Err() == nil {
				n.log.Debug("presence publish failed", "topic", t.String(), "err", err)
			}
		}
	})
}

// readPresence feeds validated presence from the shard topics to the
// matcher (and to the sharder, for its estimate) and remembers the
// addresses it carries, so claims can dial their authors.
func (n *Node) readPresence() {
	for {
		msg, on, err := n.sub.Next(n.ctx)
		if err != nil {
			return
		}
		from := msg.GetFrom()
		if from == n.h.ID() {
			continue
		}
		p, ok := msg.ValidatorData.(discovery.Presence)
		if !ok {
			continue
		}
		n.metrics.presenceReceived.Add(1)
		n.topic.heard(on, p.Level)
		var addrs []ma.Multiaddr
		for _, b := range p.Addrs {
			a, err := ma.NewMultiaddrBytes(b)
			if err != nil {
				n.log.Debug("presence address dropped", "peer", from, "err", err)
				continue
			}
			addrs = append(addrs, a)
		}
		if len(addrs) > 0 {
			n.h.Peerstore().AddAddrs(from, addrs, peerstore.TempAddrTTL)
		}
		ev := p.Seen(discovery.PeerID(from))
		ev.Connected = n.h.Network().Connectedness(from) == network.Connected
		n.post(func() { n.step(ev) })
	}
}

// rendezvous advertises the node under the network's namespace in the DHT
// (again at half the advertisement's lifetime) and, while the node knows
// fewer than rendezvousPeers other nodes, connects to some of those found
// there (connectSome), so that presence has a mesh; claims dial their
// peers directly. It retries quickly until the first round works, then
// looks every RendezvousInterval.
func (n *Node) rendezvous(connected <-chan struct{}) {
	select {
	case <-connected:
	case <-n.ctx.Done():
		return
	}
	rd := drouting.NewRoutingDiscovery(n.dht)
	ns := p2p.Namespace(n.cfg.Network)
	delay := 125 * time.Millisecond
	var again time.Time // advertise again then
	for {
		ok := true
		ctx, cancel := context.WithTimeout(n.ctx, 20*time.Second)
		if !time.Now().Before(again) {
			ttl, err := rd.Advertise(ctx, ns)
			if err != nil {
				n.log.Debug("rendezvous advertise failed", "err", err)
				ok = false
			} else {
				again = time.Now().Add(max(ttl/2, n.cfg.RendezvousInterval))
			}
		}
		if ok {
			ok = n.rendezvousOnce(ctx, rd, ns)
		}
		cancel()
		if ok {
			delay = n.cfg.RendezvousInterval
		} else {
			delay = min(2*delay, n.cfg.RendezvousInterval)
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// rendezvousOnce connects to nodes found at the rendezvous while this node
// is connected to fewer than rendezvousPeers others.
func (n *Node) rendezvousOnce(ctx context.Context, rd *drouting.RoutingDiscovery, ns string) bool {
	need := n.rendezvousPeers() - n.nodePeers()
	if need <= 0 {
		return true
	}
	_, _, ok := n.findAndConnect(ctx, rd, ns, need, &n.metrics.rendezvousConnects)
	return ok
}

// findAndConnect looks up who advertised ns and connects to need of them
// (connectSome), adding each connection to count; it returns those it
// connected to, how many others the lookup found (connected or not; -1 if
// none and the lookup did not finish in time: on a loaded machine that
// proves nothing about who is there), and whether the lookup started.
func (n *Node) findAndConnect(ctx context.Context, rd *drouting.RoutingDiscovery, ns string, need int, count *atomic.Uint64) (connected []peer.ID, others int, ok bool) {
	found, err := rd.FindPeers(ctx, ns, lpdisc.Limit(rendezvousCandidates))
	if err != nil {
		n.log.Debug("rendezvous lookup failed", "namespace", ns, "err", err)
		return nil, -1, false
	}
	connected, others, finished := n.connectSome(ctx, found, need)
	count.Add(uint64(len(connected)))
	if others == 0 && !finished {
		others = -1
	}
	return connected, others, true
}

// nodePeers counts the connected peers that are Serendip nodes (they take
// claims; relays do not).
func (n *Node) nodePeers() int {
	c := 0
	for _, p := range n.h.Network().Peers() {
		if ok, _ := n.h.Peerstore().SupportsProtocols(p, discovery.ClaimProtocol); len(ok) > 0 {
			c++
		}
	}
	return c
}

// rendezvousPeers is how many peers found at a rendezvous a node keeps
// connections to: enough for a GossipSub mesh and two spares, few enough
// that a network of thousands is not a full mesh of connections.
func (n *Node) rendezvousPeers() int {
	d := n.cfg.MeshDegree
	if d == 0 {
		d = pubsub.GossipSubD
	}
	return d + 2
}

// rendezvousCandidates is how many advertisers a lookup asks for, and
// rendezvousWait how long it waits for them, before connectSome picks.
const (
	rendezvousCandidates = 32
	rendezvousWait       = 2 * time.Second
)

// connectSome connects to need peers found at a rendezvous that it is not
// yet connected to, picked at random (so the first to advertise do not
// become everyone's hub), and counts the others found, connected or not.
// It takes what the lookup found in rendezvousWait: a lookup may run on
// until its deadline (then finished is false).
func (n *Node) connectSome(ctx context.Context, found <-chan peer.AddrInfo, need int) (connected []peer.ID, others int, finished bool) {
	var fresh []peer.AddrInfo
	wait := time.NewTimer(rendezvousWait)
	defer wait.Stop()
collect:
	for {
		var ai peer.AddrInfo
		var ok bool
		select {
		case ai, ok = <-found:
			finished = !ok
		case <-wait.C:
		case <-ctx.Done():
		}
		if !ok {
			break collect // the rest of the lookup runs on and is dropped
		}
		if ai.ID == n.h.ID() {
			continue
		}
		others++
		if len(ai.Addrs) == 0 || n.h.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		fresh = append(fresh, ai)
	}
	rand.Shuffle(len(fresh), func(i, j int) { fresh[i], fresh[j] = fresh[j], fresh[i] })
	for _, ai := range fresh {
		if need <= 0 || ctx.Err() != nil {
			return connected, others, finished
		}
		if err := n.h.Connect(ctx, ai); err != nil {
			n.log.Debug("rendezvous peer unreachable", "peer", ai.ID, "err", err)
			continue
		}
		need--
		connected = append(connected, ai.ID)
		n.log.Debug("rendezvous peer connected", "peer", ai.ID)
	}
	return connected, others, finished
}
