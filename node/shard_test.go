package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"

	"serendip/discovery"
	"serendip/node"
)

// TestDeafSearchStaysHome: a searching node that nobody else is on its
// shard's topic with (it cannot hear its shard yet) does not climb to the
// ancestors: at a thousand nodes starting at once, such nodes climbed to
// the root and announced on every level, and the machine drowned in
// presence.
func TestDeafSearchStaysHome(t *testing.T) {
	if testing.Short() {
		t.Skip("real libp2p hosts; skipped in -short")
	}
	nw := newNetwork(t)
	n, _ := nw.botWith(time.Second, func(c *node.Config) { c.StartShardLevel = 3 })
	lonely := node.LocalConfig().LonelyWait
	waitFor(t, 10*time.Second, "the node to search", func() bool { return state(t, n).State == "searching" })
	for end := time.Now().Add(5 * lonely); time.Now().Before(end); time.Sleep(lonely / 4) {
		if st := state(t, n); st.ShardTopics != 1 {
			t.Fatalf("alone on its shard (%s), the node joined %d presence topics; want 1", st.Shard, st.ShardTopics)
		}
	}
}

// TestEmptyShardIsNotDeaf: two nodes that start at level 3 in shards of
// their own hear nobody there, and their shards' rendezvous know nobody
// else either: after a Window of that, the shards count as silent, not out
// of reach, and the lonely searches climb until they meet (they used to
// wait, deaf, forever).
func TestEmptyShardIsNotDeaf(t *testing.T) {
	if testing.Short() {
		t.Skip("real libp2p hosts and DHT; skipped in -short")
	}
	nw := newNetwork(t)
	level3 := func(c *node.Config) { c.StartShardLevel = 3 }
	a, _ := nw.botWith(time.Hour, level3)
	b, _ := nw.botWith(time.Hour, level3)
	if sa, sb := state(t, a).Shard, state(t, b).Shard; sa == sb {
		t.Skipf("both nodes hashed into shard %s: nothing keeps them apart", sa)
	}
	window := node.LocalConfig().ShardConfig().Window
	waitFor(t, 3*window, "the two nodes to be in a call", func() bool {
		return state(t, a).State == "in_call" && state(t, b).State == "in_call"
	})
}

// TestAwayInLongCall: a node in a call longer than a presence lives
// leaves its shard topics (it has no use for presence then), and joins
// them again when it searches. Two bots with 5-s calls and presences of
// 2.5 s; after their call they may not meet again (RecentPartners), so
// they search on.
func TestAwayInLongCall(t *testing.T) {
	if testing.Short() {
		t.Skip("real libp2p hosts; skipped in -short")
	}
	nw := newNetwork(t)
	short := func(c *node.Config) {
		c.Matcher.AnnounceInterval = time.Second
		c.Matcher.PresenceTTL = 2500 * time.Millisecond
	}
	a, _ := nw.botWith(5*time.Second, short)
	b, _ := nw.botWith(5*time.Second, short)
	both := func(f func(node.State) bool) func() bool {
		return func() bool { return f(state(t, a)) && f(state(t, b)) }
	}
	waitFor(t, 10*time.Second, "a call", both(func(s node.State) bool { return s.State == "in_call" }))
	waitFor(t, 4*time.Second, "both to leave their shard topics in the call", both(func(s node.State) bool {
		return s.State == "in_call" && s.ShardTopics == 0
	}))
	waitFor(t, 10*time.Second, "both to search again, on their shard topics", both(func(s node.State) bool {
		return s.State == "searching" && s.ShardTopics > 0
	}))
}

// TestShardMeet: nodes that start below the root find the others of their
// shard through the DHT and hear them on the shard's topic. Ten nodes in
// four shards, each connecting to only four others through the network's
// rendezvous (GossipSub D = 2), so that the shard's own rendezvous is what
// introduces most shard mates (a node hears of others only on its shard's
// topic, and does not climb while it hears nobody there).
func TestShardMeet(t *testing.T) {
	if testing.Short() {
		t.Skip("real libp2p hosts and DHT; skipped in -short")
	}
	nw := newNetwork(t)
	var nodes []*node.Node
	for range 10 {
		n, _ := nw.botWith(time.Second, func(c *node.Config) {
			c.StartShardLevel = 2
			c.MeshDegree = 2
		})
		nodes = append(nodes, n)
	}
	waitFor(t, 20*time.Second, "every node that shares its shard to hear it", func() bool {
		shards := map[string]int{}
		for _, n := range nodes {
			shards[state(t, n).Shard]++
		}
		for _, n := range nodes {
			st := state(t, n)
			if shards[st.Shard] > 1 && st.ShardPeers == 0 {
				return false
			}
		}
		return true
	})
	for _, n := range nodes {
		if st := state(t, n); st.ShardPeers < 0 {
			t.Fatalf("node at the root (%s); want level 2", st.Shard)
		}
	}
}

// TestSiblingMeet: once a search of its has climbed (lonely), a node keeps
// connections to nodes of its sibling shard (the other half of its
// parent), so that a lonely search's announcement there reaches someone,
// and tags them for the connection manager. Seven bots at level 1 (two
// shards, one with an odd number of them, so that one of its bots finds
// the others all busy now and then, and climbs), each meeting only four
// others through the network's rendezvous (GossipSub D = 2). A shard
// target of 8 messages keeps them at level 1.
func TestSiblingMeet(t *testing.T) {
	if testing.Short() {
		t.Skip("real libp2p hosts and DHT; skipped in -short")
	}
	nw := newNetwork(t)
	type member struct {
		n *node.Node
		h host.Host
	}
	var ms []member
	for range 7 {
		n, h := nw.botWith(time.Second, func(c *node.Config) {
			c.StartShardLevel = 1
			c.MeshDegree = 2
			c.ShardTarget = 8
		})
		ms = append(ms, member{n, h})
	}
	shardOf := map[peer.ID]string{}
	for _, m := range ms {
		shardOf[m.h.ID()] = state(t, m.n).Shard
	}
	if !bothHalves(shardOf) {
		// A node alone in its shard hears nobody there and does not
		// climb (TestDeafSearchStaysHome).
		t.Skipf("fewer than two of the seven nodes in one of the shards (%v)", shardOf)
	}
	waitFor(t, 30*time.Second, "a node to tag a node of its sibling shard", func() bool {
		for _, m := range ms { // the shards now (a node may change level)
			shardOf[m.h.ID()] = state(t, m.n).Shard
		}
		tagged := false
		for _, m := range ms {
			mine := shardOf[m.h.ID()]
			for _, p := range m.h.Network().Peers() {
				info := m.h.ConnManager().GetTagInfo(p)
				if info == nil || info.Tags["serendip-sibling"] == 0 {
					continue
				}
				if s, ok := shardOf[p]; !ok || s == mine {
					t.Fatalf("node in %s tagged %s (shard %q) as a sibling", mine, p, s)
				} else if l, i := parseShard(t, mine); s == fmt.Sprintf("%d.%d", l, i^1) {
					tagged = true
				}
			}
		}
		return tagged
	})
}

// parseShard reads a shard below the root as Shard.String writes it
// ("level.index").
func parseShard(t *testing.T, s string) (level, index int) {
	if _, err := fmt.Sscanf(s, "%d.%d", &level, &index); err != nil || level < 1 {
		t.Fatalf("shard %q: want level.index below the root", s)
	}
	return level, index
}

// bothHalves reports whether both level-1 shards ("1.0" and "1.1") have
// two nodes or more.
func bothHalves(shards map[peer.ID]string) bool {
	seen := map[string]int{}
	for _, s := range shards {
		seen[s]++
	}
	return seen["1.0"] >= 2 && seen["1.1"] >= 2
}

// TestSiblingMeetBacksOff: a lonely node climbs from a shard of its own,
// and its sibling's rendezvous lists only nodes that are not on the
// sibling's topic (they have moved to another level since, as at 150 and
// 300 nodes with shards at two levels). The node connects to two of them,
// sees that they did not join, and waits before it looks again; it used to
// look again at once and connect to all of them, one lookup after another.
func TestSiblingMeetBacksOff(t *testing.T) {
	if testing.Short() {
		t.Skip("real libp2p hosts and DHT; skipped in -short")
	}
	nw := newNetwork(t)
	a, _ := nw.botWith(time.Hour, func(c *node.Config) { c.StartShardLevel = 3 })
	var level, index int
	waitFor(t, 10*time.Second, "the node to search", func() bool { return state(t, a).State == "searching" })
	level, index = parseShard(t, state(t, a).Shard)
	sibling := discovery.ShardTopic(nw.name, discovery.Shard{Level: uint8(level), Index: uint32(index ^ 1)})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const stale = 6
	for range stale {
		h := newHost(t)
		d, err := dht.New(h, dht.Mode(dht.ModeClient), dht.BootstrapPeers(nw.relay))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if err := h.Connect(ctx, nw.relay); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the relay in a DHT client's routing table", func() bool { return d.RoutingTable().Size() > 0 })
		if _, err := drouting.NewRoutingDiscovery(d).Advertise(ctx, sibling); err != nil {
			t.Fatal(err)
		}
	}

	window := node.LocalConfig().ShardConfig().Window
	waitFor(t, 3*window, "the lonely node to meet its sibling's rendezvous", func() bool {
		return a.Metrics().SiblingConnects > 0
	})
	time.Sleep(6 * time.Second)
	if got := a.Metrics().SiblingConnects; got > 2 {
		t.Errorf("6 s after its first sibling meet, the node had connected to %d of the %d nodes its sibling's rendezvous lists, none on the sibling's topic; want 2 (then a wait)", got, stale)
	}
}

// TestPresenceUnsentAlone: a node alone below the root has nobody on its
// home shard's topic, nor on its sibling's: it does not publish there
// (PresenceUnsent), and what it publishes on the root, where the relay
// is, goes out (PresenceSent).
func TestPresenceUnsentAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("real libp2p hosts; skipped in -short")
	}
	nw := newNetwork(t)
	a, _ := nw.botWith(time.Hour, func(c *node.Config) { c.StartShardLevel = 2 })
	waitFor(t, 10*time.Second, "announcements left unpublished", func() bool { return a.Metrics().PresenceUnsent >= 3 })
	m := a.Metrics()
	if m.PresenceReceived != 0 {
		t.Errorf("a node alone received %d presence messages", m.PresenceReceived)
	}
	// A lonely node climbs to the root (where the relay is) within a few
	// announcements: those go out.
	waitFor(t, 15*time.Second, "an announcement on the root, where the relay is", func() bool { return a.Metrics().PresenceSent > 0 })
}
