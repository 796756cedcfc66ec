package bootstrap

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"serendip/internal/hosttest"
)

// TestConnectRedials: the first success is signalled, the bootstrap peer is
// protected from trimming, and one that drops the connection is dialled
// again.
func TestConnectRedials(t *testing.T) {
	old := checkEvery
	checkEvery = 200 * time.Millisecond
	t.Cleanup(func() { checkEvery = old })
	a, b := hosttest.Loopback(t), hosttest.Loopback(t)
	ctx, cancel := context.WithCancel(context.Background())
	connected := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		Connect(ctx, a, []peer.AddrInfo{{ID: b.ID(), Addrs: b.Addrs()}}, slog.New(slog.DiscardHandler), connected)
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("never connected")
	}
	if !a.ConnManager().IsProtected(b.ID(), protectTag) {
		t.Error("bootstrap peer not protected from the connection manager")
	}
	if err := b.Network().ClosePeer(a.ID()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for a.Network().Connectedness(b.ID()) == network.Connected {
		if time.Now().After(deadline) {
			t.Fatal("connection never dropped")
		}
		time.Sleep(5 * time.Millisecond)
	}
	deadline = time.Now().Add(10 * time.Second)
	for a.Network().Connectedness(b.ID()) != network.Connected {
		if time.Now().After(deadline) {
			t.Fatal("dropped bootstrap peer was not dialled again")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
