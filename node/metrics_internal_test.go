package node

import (
	"testing"
	"time"

	"serendip/internal/hosttest"
)

// A loop step over slowStep is counted in Metrics.SlowSteps; quick ones are
// not.
func TestSlowStepsCounted(t *testing.T) {
	h := hosttest.Loopback(t)
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
