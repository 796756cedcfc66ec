package node_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"

	"serendip/internal/hosttest"
	"serendip/node"
	"serendip/relay"
)

// newHost starts a real libp2p host on loopback TCP and QUIC.
func newHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("SERENDIP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// testNet is a relay and some nodes on loopback.
type testNet struct {
	t     *testing.T
	name  string
	relay peer.AddrInfo
}

func newNetwork(t *testing.T) *testNet {
	h := newHost(t)
	cfg := relay.DefaultConfig()
	cfg.Network = fmt.Sprintf("test-%d", time.Now().UnixNano())
	cfg.PresenceTTL = node.LocalConfig().Matcher.PresenceTTL
	r, err := relay.New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &testNet{t: t, name: cfg.Network, relay: peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}}
}

// bot starts a node that loops the test clips and records what it receives.
func (nw *testNet) bot(callTime time.Duration) (*node.Node, host.Host) {
	return nw.botWith(callTime, nil)
}

// botWith is bot with a change to its configuration (mod may be nil).
func (nw *testNet) botWith(callTime time.Duration, mod func(*node.Config)) (*node.Node, host.Host) {
	h := newHost(nw.t)
	return nw.node(h, func(c *node.Config) {
		c.CallTime = callTime
		if mod != nil {
			mod(c)
		}
	}), h
}

// node starts a bot on h: it loops the test clips, records what it receives
// and searches again after every call (mod may change that).
func (nw *testNet) node(h host.Host, mod func(*node.Config)) *node.Node {
	t := nw.t
	cfg := node.LocalConfig()
	cfg.Network = nw.name
	cfg.Bootstrap = []peer.AddrInfo{nw.relay}
	cfg.VideoFile = filepath.Join("..", "testdata", "clip.ivf")
	cfg.AudioFile = filepath.Join("..", "testdata", "clip.ogg")
	cfg.RecordDir = t.TempDir()
	cfg.DataDir = t.TempDir()
	cfg.Auto = true
	cfg.Logger = testLogger(t)
	if mod != nil {
		mod(&cfg)
	}
	n, err := node.New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func state(t *testing.T, n *node.Node) node.State {
	t.Helper()
	st, err := n.State()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func history(t *testing.T, n *node.Node) []node.CallRecord {
	t.Helper()
	h, err := n.History()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestThreeBots runs a relay and three bots on loopback: every node gets
// calls with media both ways, Next ends calls on both sides and nodes meet
// new partners, and a node that vanishes sends its partner back to search.
func TestThreeBots(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real libp2p and Pion; skipped in -short")
	}
	nw := newNetwork(t)
	const callTime = 3 * time.Second
	var nodes []*node.Node
	var hosts []host.Host
	for range 3 {
		n, h := nw.bot(callTime)
		nodes = append(nodes, n)
		hosts = append(hosts, h)
	}
	byID := map[string]int{}
	for i, h := range hosts {
		byID[h.ID().String()] = i
	}

	// Every node completes at least two calls, so with three nodes at least
	// one node meets two different partners.
	waitFor(t, 60*time.Second, "every node to complete two calls", func() bool {
		for _, n := range nodes {
			if state(t, n).Calls < 2 {
				return false
			}
		}
		return true
	})

	records := make([]map[string]node.CallRecord, len(nodes))
	for i, n := range nodes {
		records[i] = map[string]node.CallRecord{}
		for _, r := range history(t, n) {
			records[i][r.MatchID] = r
		}
	}
	differentPartners := false
	for i, n := range nodes {
		partners := map[string]bool{}
		for _, r := range history(t, n) {
			if !r.Connected {
				continue
			}
			partners[r.Partner] = true
			if r.VideoFramesReceived < 10 || r.AudioPacketsReceived < 10 {
				t.Errorf("node %d call %s with %d: %d video frames, %d audio packets received; want >= 10 each",
					i, r.MatchID, byID[r.Partner], r.VideoFramesReceived, r.AudioPacketsReceived)
			}
			// The partner ended the same call, under the same match id,
			// with the roles the other way round.
			j, ok := byID[r.Partner]
			if !ok {
				t.Fatalf("node %d called an unknown peer %s", i, r.Partner)
			}
			other, ok := records[j][r.MatchID]
			if !ok {
				// The partner may still be hanging up this very call.
				waitFor(t, 5*time.Second, "partner's record of the call", func() bool {
					for _, pr := range history(t, nodes[j]) {
						if pr.MatchID == r.MatchID {
							other, ok = pr, true
						}
					}
					return ok
				})
			}
			if other.Partner != hosts[i].ID().String() || other.Offerer == r.Offerer {
				t.Errorf("call %s: node %d says partner %d offerer %v; partner says %s offerer %v",
					r.MatchID, i, j, r.Offerer, other.Partner, other.Offerer)
			}
			if r.Reason != "next" && other.Reason != "next" {
				t.Errorf("call %s ended by neither side's next: %q / %q", r.MatchID, r.Reason, other.Reason)
			}
		}
		if len(partners) >= 2 {
			differentPartners = true
		}
	}
	if !differentPartners {
		t.Error("no node met a second, different partner")
	}

	// Kill one node in a call abruptly (its host goes away with no bye) and
	// watch its partner search again.
	var victim, survivor int
	waitFor(t, 20*time.Second, "a call to kill", func() bool {
		for i, n := range nodes {
			st := state(t, n)
			// A call young enough that its own hangup is far away.
			if st.State == "in_call" && st.CallSeconds < callTime.Seconds()/3 {
				victim, survivor = i, byID[st.Partner]
				return true
			}
		}
		return false
	})
	before := len(history(t, nodes[survivor]))
	killed := time.Now()
	hosts[victim].Close()
	waitFor(t, 10*time.Second, "the survivor to notice its partner vanished", func() bool {
		h := history(t, nodes[survivor])
		return len(h) > before && h[before].Partner == hosts[victim].ID().String()
	})
	h := history(t, nodes[survivor])
	t.Logf("survivor noticed after %v: %q", time.Since(killed).Round(time.Millisecond), h[before].Reason)
	if h[before].Reason == "next" {
		t.Errorf("survivor's call ended by next, not by the partner vanishing")
	}
	if st := state(t, nodes[survivor]); st.State == "idle" {
		t.Errorf("survivor is idle after its partner vanished; want searching or a new call")
	}
}

// TestCallConnectionProtected: while two nodes are matched, the connection
// between them (their signalling stream's) is protected from the
// connection manager; once the call is over it is not.
func TestCallConnectionProtected(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real libp2p and Pion; skipped in -short")
	}
	nw := newNetwork(t)
	var nodes []*node.Node
	var hosts []host.Host
	for range 2 {
		cm, err := connmgr.NewConnManager(1, 2, connmgr.WithGracePeriod(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		h := hosttest.Loopback(t, libp2p.ConnectionManager(cm))
		n := nw.node(h, func(c *node.Config) { c.Auto = false })
		nodes, hosts = append(nodes, n), append(hosts, h)
	}
	const tag = "serendip-call"
	for _, n := range nodes {
		if err := n.Start(nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "a call", func() bool {
		return state(t, nodes[0]).State == "in_call" && state(t, nodes[1]).State == "in_call"
	})
	for i, h := range hosts {
		other := hosts[1-i].ID()
		if !h.ConnManager().IsProtected(other, tag) {
			t.Errorf("node %d in a call: connection to its partner not protected", i)
		}
	}
	if err := nodes[0].Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the call to end on both sides", func() bool {
		return state(t, nodes[0]).State == "idle" && state(t, nodes[1]).State != "in_call"
	})
	for i, h := range hosts {
		if h.ConnManager().IsProtected(hosts[1-i].ID(), tag) {
			t.Errorf("node %d: connection to its former partner still protected", i)
		}
	}
}
