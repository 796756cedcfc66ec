package harness

import (
	"crypto/ed25519"
	"io"
	"net"
	"time"
)

// signMicros measures the host's arithmetic: how long one Ed25519
// signature of a presence-sized message takes on one core. It does not
// tell the whole story: on 2026-11-22 the same 200-node run took 40 % more
// CPU than the day before while a signature took no longer (see
// loopbackMicros).
func signMicros() float64 {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	msg := make([]byte, 200)
	return fastest(func() error {
		ed25519.Sign(key, msg)
		return nil
	})
}

// loopbackMicros measures what most of a harness run is made of besides
// arithmetic (system calls, goroutines waking each other): one round trip
// of a 64-byte message over a TCP connection on 127.0.0.1 to an echo in
// this process. 0 if no connection could be made.
func loopbackMicros() float64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	return fastest(func() error {
		if _, err := c.Write(buf); err != nil {
			return err
		}
		_, err := io.ReadFull(c, buf)
		return err
	})
}

// fastest repeats op for five batches of about 40 ms each and returns, in
// microseconds, how long one op took in the fastest batch (the least
// disturbed by other work); 0 if op failed.
func fastest(op func() error) float64 {
	best := time.Duration(1<<63 - 1)
	for range 5 {
		n, start := 0, time.Now()
		for time.Since(start) < 40*time.Millisecond {
			if op() != nil {
				return 0
			}
			n++
		}
		best = min(best, time.Since(start)/time.Duration(n))
	}
	return float64(best) / float64(time.Microsecond)
}
