package harness

import (
	"math"
	"runtime/metrics"
)

// schedMetric is the Go runtime's histogram of how long goroutines waited
// runnable before they ran. In process, every node's work is goroutines on
// this process's cores: a message that crosses a node passes from one
// goroutine to the next several times (a connection's reader, GossipSub's
// loop, a validator, the node's loop), and waits this long at each. When
// the cores are full the wait grows, and every claim, presence and call
// setup with it; the run's CPU share says the cores were busy, this says
// what it cost the nodes.
const schedMetric = "/sched/latencies:seconds"

// readSched reads schedMetric (nil if the runtime has none).
func readSched() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: schedMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return s[0].Value.Float64Histogram()
}

// schedWait summarises, in milliseconds, the waits counted between two
// readings of schedMetric (before, then after). The runtime counts in
// buckets: a percentile is the upper bound of the bucket it falls in (the
// lower bound for the last, unbounded one), the mean takes each bucket's
// middle, and Max is the lower bound of the highest bucket counted. The
// runtime samples the waits it records, so Count is not every wake-up.
// Nil if the readings do not fit (no metric, other buckets) or nothing was
// counted.
func schedWait(before, after *metrics.Float64Histogram) *Percentiles {
	if before == nil || after == nil || len(before.Counts) != len(after.Counts) ||
		len(after.Buckets) != len(after.Counts)+1 {
		return nil
	}
	lower := func(i int) float64 { return max(after.Buckets[i], 0) }
	edge := func(i int) float64 { // the bucket's upper bound, or lower if unbounded
		if hi := after.Buckets[i+1]; !math.IsInf(hi, 1) {
			return hi
		}
		return lower(i)
	}
	counts := make([]uint64, len(after.Counts))
	var total uint64
	var sum float64 // seconds, each wait at its bucket's middle
	top := 0
	for i := range counts {
		if after.Counts[i] < before.Counts[i] {
			return nil
		}
		c := after.Counts[i] - before.Counts[i]
		counts[i], total = c, total+c
		if c > 0 {
			sum += float64(c) * (lower(i) + edge(i)) / 2
			top = i
		}
	}
	if total == 0 {
		return nil
	}
	toMs := func(s float64) float64 { return math.Round(s*1e6) / 1e3 }
	at := func(p float64) float64 {
		want := uint64(math.Ceil(p * float64(total)))
		var seen uint64
		for i, c := range counts {
			if seen += c; seen >= want {
				return toMs(edge(i))
			}
		}
		return toMs(edge(top))
	}
	return &Percentiles{
		Count: int(total),
		P50:   at(0.50), P95: at(0.95), P99: at(0.99),
		Max:  toMs(lower(top)),
		Mean: math.Round(sum/float64(total)*1e5) / 1e2,
	}
}
