package harness

import (
	"math"
	"runtime/metrics"
	"testing"
)

func TestSchedWait(t *testing.T) {
	buckets := []float64{math.Inf(-1), 1e-6, 1e-5, 1e-4, 1e-3, math.Inf(1)}
	before := &metrics.Float64Histogram{Buckets: buckets, Counts: []uint64{1, 1, 0, 0, 0}}
	after := &metrics.Float64Histogram{Buckets: buckets, Counts: []uint64{1, 11, 80, 9, 1}}
	p := schedWait(before, after)
	if p == nil {
		t.Fatal("schedWait = nil")
	}
	// 100 waits: 10 under 10 µs, 80 under 100 µs, 9 under 1 ms, 1 over.
	want := Percentiles{Count: 100, P50: 0.1, P95: 1, P99: 1, Max: 1, Mean: 0.1}
	if *p != want {
		t.Errorf("schedWait = %+v; want %+v", *p, want)
	}
	for name, c := range map[string][2]*metrics.Float64Histogram{
		"no reading":    {nil, after},
		"other buckets": {{Buckets: buckets[:4], Counts: []uint64{0, 0, 0}}, after},
		"counts fell":   {after, before},
		"nothing new":   {after, after},
	} {
		if got := schedWait(c[0], c[1]); got != nil {
			t.Errorf("%s: schedWait = %+v; want nil", name, *got)
		}
	}
}

// TestSchedWaitLive reads the runtime's own histogram around goroutines
// that wake each other: the waits counted are there, and small.
func TestSchedWaitLive(t *testing.T) {
	before := readSched()
	if before == nil {
		t.Skip("this Go runtime has no " + schedMetric)
	}
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
		close(pong)
	}()
	for i := range 20000 {
		ping <- i
		<-pong
	}
	close(ping)
	p := schedWait(before, readSched())
	if p == nil || p.Count == 0 {
		t.Fatalf("schedWait = %+v after 40,000 wake-ups; want some counted", p)
	}
	if p.P50 > 1000 || p.P50 > p.P95 || p.P95 > p.P99 {
		t.Errorf("schedWait = %+v: not a plausible distribution", *p)
	}
}
