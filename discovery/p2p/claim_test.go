package p2p

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"serendip/discovery"
	"serendip/internal/hosttest"
)

// A claim to a peer we have no connection to dials it and selects the
// protocol with the claim itself (no identify first); the next claim goes
// over the connection the first one made.
func TestSendClaimDials(t *testing.T) {
	a, b := hosttest.Loopback(t), hosttest.Loopback(t)
	got := make(chan discovery.Claim, 2)
	cs := ServeClaims(b, func(_ context.Context, from peer.ID, c discovery.Claim) (discovery.Reply, bool) {
		if from != a.ID() {
			t.Errorf("claim from %s, want %s", from, a.ID())
		}
		got <- c
		return discovery.Reply{ID: c.ID, Verdict: discovery.Accept}, true
	}, nil, time.Second, 10, nil)
	defer cs.Close()
	a.Peerstore().AddAddrs(b.ID(), b.Addrs(), peerstore.TempAddrTTL)

	for i, want := range []network.Connectedness{network.NotConnected, network.Connected} {
		if c := a.Network().Connectedness(b.ID()); c != want {
			t.Fatalf("claim %d: connectedness %v before, want %v", i, c, want)
		}
		c := discovery.Claim{ID: discovery.MatchID{byte(i + 1)}, Ticket: uint64(i)}
		sent := false
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := SendClaim(ctx, a, b.ID(), c, 2*time.Second, func() { sent = true })
		cancel()
		if err != nil {
			t.Fatalf("claim %d: %v", i, err)
		}
		if r.ID != c.ID || r.Verdict != discovery.Accept || !sent {
			t.Fatalf("claim %d: reply %+v, sent %v; want an Accept of %x", i, r, sent, c.ID)
		}
		if h := <-got; h != c {
			t.Fatalf("claim %d: target got %+v, want %+v", i, h, c)
		}
	}
}

// A peer that does not take claims answers a claim over a fresh connection
// with an error at once (the protocol selection fails), not a timeout.
func TestSendClaimUnsupported(t *testing.T) {
	a, b := hosttest.Loopback(t), hosttest.Loopback(t)
	a.Peerstore().AddAddrs(b.ID(), b.Addrs(), peerstore.TempAddrTTL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := SendClaim(ctx, a, b.ID(), discovery.Claim{ID: discovery.MatchID{1}}, 5*time.Second, nil)
	if err == nil {
		t.Fatal("claim to a peer without the protocol: no error")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("claim to a peer without the protocol failed after %v (%v); want at once", d, err)
	}
}
