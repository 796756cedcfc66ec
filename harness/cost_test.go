package harness

import (
	"context"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
)

// BenchmarkConnect measures what one new connection between two node
// hosts of the harness costs both ends: TCP on loopback, Noise, yamux,
// identify both ways, then closing it. cpu-ms/conn is this process's user
// and system CPU per connection (getrusage), the unit of the harness's
// connection figures (a claim to a peer not yet connected, a meet).
func BenchmarkConnect(b *testing.B) { benchConnect(b, false) }

// BenchmarkConnectGossipSub is BenchmarkConnect with GossipSub on both
// hosts, both joined to one topic, as node hosts are: each new connection
// also carries GossipSub's hello (the topics each side joined) and its
// mesh upkeep; the connection counts once both see the other on the topic.
func BenchmarkConnectGossipSub(b *testing.B) { benchConnect(b, true) }

func benchConnect(b *testing.B, gossip bool) {
	a, z := benchHost(b), benchHost(b)
	var ta *pubsub.Topic
	if gossip {
		ctx, cancel := context.WithCancel(context.Background())
		b.Cleanup(cancel)
		for _, h := range []host.Host{a, z} {
			ps, err := pubsub.NewGossipSub(ctx, h)
			if err != nil {
				b.Fatal(err)
			}
			t, err := ps.Join("serendip/bench/presence/1")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := t.Subscribe(); err != nil {
				b.Fatal(err)
			}
			if h == a {
				ta = t
			}
		}
	}
	identified, err := a.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted), eventbus.BufSize(16))
	if err != nil {
		b.Fatal(err)
	}
	defer identified.Close()
	ai := peer.AddrInfo{ID: z.ID(), Addrs: z.Addrs()}
	start := cpuTime()
	b.ResetTimer()
	for range b.N {
		if err := a.Connect(context.Background(), ai); err != nil {
			b.Fatal(err)
		}
		waitIdentified(b, identified, z.ID())
		if ta != nil {
			waitUntil(b, "the peer on the topic", func() bool { return len(ta.ListPeers()) == 1 })
		}
		if err := a.Network().ClosePeer(z.ID()); err != nil {
			b.Fatal(err)
		}
		waitUntil(b, "both ends closed", func() bool {
			return a.Network().Connectedness(z.ID()) != network.Connected && z.Network().Connectedness(a.ID()) != network.Connected
		})
		if ta != nil {
			waitUntil(b, "the peer off the topic", func() bool { return len(ta.ListPeers()) == 0 })
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/conn")
}

func benchHost(b *testing.B) host.Host {
	b.Helper()
	h, err := newHost(metrics.NewBandwidthCounter())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	return h
}

func waitIdentified(b *testing.B, sub event.Subscription, p peer.ID) {
	b.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-sub.Out():
			if e.(event.EvtPeerIdentificationCompleted).Peer == p {
				return
			}
		case <-deadline:
			b.Fatal("identify did not complete")
		}
	}
}

// waitUntil polls cond every millisecond (seldom enough not to count in
// the CPU figure) for up to 10 s.
func waitUntil(b *testing.B, what string, cond func() bool) {
	b.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for %s", what)
		}
	}
}

func cpuTime() time.Duration {
	u, _ := selfUsage()
	return u.CPU
}
