package node

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
)

// A loop step over slowStep is counted in Metrics.SlowSteps; quick ones are
// not.
func TestSlowStepsCounted(t *testing.T) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	cfg := LocalConfig()
	cfg.Network = "slow-steps-test"
	cfg.DataDir = t.TempDir()
	n, err := New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for range 3 {
		if err := n.query(func() {}); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.query(func() { time.Sleep(slowStep + 20*time.Millisecond) }); err != nil {
		t.Fatal(err)
	}
	// The loop counts a step after it returns: one more step first.
	if err := n.query(func() {}); err != nil {
		t.Fatal(err)
	}
	if got := n.Metrics().SlowSteps; got != 1 {
		t.Fatalf("SlowSteps %d after one slow step and three quick ones; want 1", got)
	}
}
