package node

import (
	"math/rand/v2"
	"testing"
	"time"

	"serendip/discovery"
)

// Without spread a call lasts CallTime; with it, [CallTime/2, 3·CallTime/2)
// with mean CallTime, the same for both partners (the same match id).
func TestCallLength(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	id := func() (m discovery.MatchID) {
		for i := range m {
			m[i] = byte(rng.Uint32())
		}
		return m
	}
	const d = 3 * time.Second
	if got := callLength(d, false, id()); got != d {
		t.Fatalf("no spread: %v, want %v", got, d)
	}
	if got := callLength(0, true, id()); got != 0 {
		t.Fatalf("no call time, spread: %v, want 0 (never hang up)", got)
	}
	var sum time.Duration
	lo, hi := d, time.Duration(0)
	const n = 10000
	for range n {
		m := id()
		got := callLength(d, true, m)
		if got < d/2 || got >= d*3/2 {
			t.Fatalf("spread: %v outside [%v, %v)", got, d/2, d*3/2)
		}
		if again := callLength(d, true, m); again != got {
			t.Fatalf("spread: %v and %v for the same match", got, again)
		}
		sum += got
		lo, hi = min(lo, got), max(hi, got)
	}
	if mean := sum / n; mean < d*98/100 || mean > d*102/100 {
		t.Errorf("spread: mean %v, want about %v", mean, d)
	}
	if lo > d*55/100 || hi < d*145/100 {
		t.Errorf("spread: draws only within [%v, %v]", lo, hi)
	}
}
