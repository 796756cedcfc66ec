package limit

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestPerPeerBurstThenRefuse(t *testing.T) {
	l := NewPerPeer(0.001, 3)
	a, b := peer.ID("a"), peer.ID("b")
	for i := 0; i < 3; i++ {
		if !l.Allow(a) {
			t.Fatalf("event %d of the burst refused", i)
		}
	}
	if l.Allow(a) {
		t.Fatal("fourth event allowed past a burst of 3")
	}
	if !l.Allow(b) {
		t.Fatal("another peer was limited by a's events")
	}
}
