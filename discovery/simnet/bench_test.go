package simnet

import (
	"testing"
	"time"

	"serendip/discovery"
)

// BenchmarkChurn10k simulates 10,000 nodes for 10s of calls and searches;
// it reports the events (machine steps) processed per second of CPU.
// `serendip sim` runs the big scenarios.
func BenchmarkChurn10k(b *testing.B) {
	mc := discovery.DefaultConfig()
	mc.ClaimJitter, mc.PairWait = 60*time.Millisecond, 300*time.Millisecond
	sc := Scenario{Nodes: 10000, Seed: 1, Duration: 10 * time.Second, StartSpread: 10 * time.Second, CallLength: 30 * time.Second,
		Latency: Uniform(20*time.Millisecond, 80*time.Millisecond), Matcher: mc, Sharded: true,
		Shard: discovery.DefaultShardConfig(mc), ShardLevel: -1}
	steps := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := RunScenario(sc)
		if err != nil {
			b.Fatal(err)
		}
		steps += rep.Steps
	}
	b.ReportMetric(float64(steps)/b.Elapsed().Seconds(), "steps/s")
}
