package harness

import (
	"crypto/ed25519"
	"time"
)

// signMicros measures the host's speed: how long one Ed25519 signature of
// a presence-sized message takes on one core, the best of five short
// batches (the least disturbed by other work). Runs on different hosts, or
// on one host at different times, differ by about this factor before any
// change of code: a host that signs slower runs every node slower.
func signMicros() float64 {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	msg := make([]byte, 200)
	best := time.Duration(1<<63 - 1)
	for range 5 {
		n, start := 0, time.Now()
		for time.Since(start) < 40*time.Millisecond {
			ed25519.Sign(key, msg)
			n++
		}
		best = min(best, time.Since(start)/time.Duration(n))
	}
	return float64(best) / float64(time.Microsecond)
}
