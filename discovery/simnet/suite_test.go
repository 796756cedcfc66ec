package simnet

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"serendip/discovery"
)

// randomScenario draws one small, hostile workload from seed: 4 to 30
// nodes, 5% loss (silent on odd seeds), latencies that reorder, crashes,
// churn (calls that end, nodes that leave and join), partitions, interests,
// sharded presence with several levels and fast epochs, local or internet
// timers. The invariants are checked on every step of the run.
func randomScenario(seed uint64) Scenario {
	r := rand.New(rand.NewPCG(seed, 0xfeed))
	mc := discovery.LocalConfig()
	lo := time.Duration(1+r.IntN(20)) * time.Millisecond
	lat := Uniform(lo, lo+time.Duration(10+r.IntN(150))*time.Millisecond)
	if seed%5 == 1 {
		lat = Latency{Kind: "lognormal", Median: 30 * time.Millisecond, Sigma: 0.8, Min: 3 * time.Millisecond, Max: 300 * time.Millisecond}
	}
	if seed%7 == 0 {
		mc = discovery.DefaultConfig()
		lat = Uniform(20*time.Millisecond, 300*time.Millisecond)
	}
	sc := Scenario{
		Nodes:      4 + r.IntN(27),
		Seed:       seed,
		Duration:   time.Duration(20+r.IntN(20)) * time.Second,
		CallLength: time.Duration(1+r.IntN(5)) * time.Second,
		Latency:    lat,
		Loss:       0.05,
		SilentLoss: seed%2 == 1,
		Crash:      0.1,
		Leave:      0.05,
		Join:       0.1,
		Matcher:    mc,
		ShardLevel: -1,
	}
	if r.IntN(3) == 0 {
		sc.StartSpread = 0 // everyone at once
	} else {
		sc.StartSpread = time.Duration(r.IntN(3000)) * time.Millisecond
	}
	if seed%5 == 0 {
		sc.Partition = 0.3
	}
	if seed%3 == 0 {
		sc.Interests = 0.5
	}
	if seed%2 == 0 {
		sc.Sharded = true
		sc.Shard = discovery.DefaultShardConfig(mc)
		sc.Shard.Target = 2 + r.IntN(3)
		sc.Shard.MaxLevel = 4
		sc.Shard.Epoch = time.Duration(5+r.IntN(20)) * time.Second
		sc.Shard.Window = 4 * mc.AnnounceInterval
	}
	return sc
}

// TestSeeds runs 1,000 seeds of randomScenario: no invariant may break
// (safety on every step: no node in two matches, both sides agree on
// partner, match id and roles; liveness: no node stuck claiming, matched
// without a call or past a timer, and no two nodes that could match both
// searching for long).
func TestSeeds(t *testing.T) {
	seeds := 1000
	if testing.Short() || raceEnabled {
		seeds = 50
	}
	var mu sync.Mutex
	var total Stats
	var sharded, parts atomic.Int32
	t.Run("seeds", func(t *testing.T) {
		for seed := uint64(1); seed <= uint64(seeds); seed++ {
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				t.Parallel()
				sc := randomScenario(seed)
				rep, err := RunScenario(sc)
				if err != nil {
					t.Fatalf("%d nodes, sharded %v, partition %v: %v", sc.Nodes, sc.Sharded, sc.Partition, err)
				}
				if sc.Sharded {
					sharded.Add(1)
				}
				if sc.Partition > 0 {
					parts.Add(1)
				}
				mu.Lock()
				addStats(&total, rep.Stats)
				mu.Unlock()
			})
		}
	})
	t.Logf("%d seeds (%d sharded, %d partitioned): %d calls, %d claims, %d lost messages, %d crashes, %d half-matches, %d steps",
		seeds, sharded.Load(), parts.Load(), total.Calls, total.Claims, total.Lost, total.Crashes, total.HalfMatches, total.Steps)
	if total.Calls < seeds*20 {
		t.Errorf("only %d calls over %d seeds", total.Calls, seeds)
	}
}

// TestContentionEconomy: everyone presses Start at the same instant; claims
// per call stay at most 1.5, and once a node has someone to pair with it is
// matched within a few round trips.
func TestContentionEconomy(t *testing.T) {
	mc := discovery.DefaultConfig()
	lat := Uniform(20*time.Millisecond, 80*time.Millisecond)
	mc.ClaimJitter, mc.PairWait = 60*time.Millisecond, 300*time.Millisecond
	for _, tt := range []struct {
		nodes   int
		sharded bool
	}{{10, false}, {50, false}, {200, false}, {3000, true}} {
		sc := Scenario{Nodes: tt.nodes, Seed: 1, Duration: 20 * time.Second, Latency: lat, Matcher: mc, Sharded: tt.sharded,
			Shard: discovery.DefaultShardConfig(mc), ShardLevel: -1}
		var claims, calls int
		var warm99 float64
		for seed := uint64(1); seed <= uint64(max(1, 2000/tt.nodes)); seed++ {
			sc.Seed = seed
			rep, err := RunScenario(sc)
			if err != nil {
				t.Fatal(err)
			}
			claims += rep.Stats.Claims
			calls += rep.Matches
			warm99 = max(warm99, rep.TTMWarm.RTTs99)
		}
		perCall := float64(claims) / float64(calls)
		t.Logf("%4d nodes at once (sharded %v): %.3f claims per call, warm p99 at most %.1f RTT", tt.nodes, tt.sharded, perCall, warm99)
		if perCall > 1.5 {
			t.Errorf("%d nodes: %.2f claims per call", tt.nodes, perCall)
		}
		if warm99 > 4 {
			t.Errorf("%d nodes: p99 time to match once warm %.1f round trips", tt.nodes, warm99)
		}
	}
}

// TestFairnessPairs: over many rounds of calls, every pair of nodes is an
// equally likely partner (chi-square over all pairs, p > 0.01), with one
// topic, and with shards that rotate every epoch. The control: shards that
// never rotate confine partners to a shard, and the test sees it.
func TestFairnessPairs(t *testing.T) {
	mc := discovery.LocalConfig()
	run := func(nodes int, sharded bool, epoch, d time.Duration) (float64, int) {
		sc := Scenario{Nodes: nodes, Seed: 7, Duration: d, StartSpread: time.Second, CallLength: time.Second,
			Latency: Uniform(2*time.Millisecond, 30*time.Millisecond), Matcher: mc, Sharded: sharded, ShardLevel: -1}
		if sharded {
			sc.Shard = discovery.DefaultShardConfig(mc)
			sc.Shard.Target, sc.Shard.Epoch, sc.Shard.MaxLevel = 4, epoch, 2
			sc.ShardLevel = 2
		}
		n, err := sc.Build()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Run(sc.Duration, nil); err != nil {
			t.Fatal(err)
		}
		_, _, p := PairsChiSquare(n.Pairs(), nodes)
		return p, n.Stats().Calls
	}
	p, calls := run(10, false, 0, 20*time.Minute)
	t.Logf("10 nodes, one topic: %d calls over 45 pairs, p = %.3f", calls, p)
	if p < 0.01 {
		t.Errorf("one topic: unfair, p = %g", p)
	}
	p, calls = run(24, true, 5*time.Second, 40*time.Minute)
	t.Logf("24 nodes, 4 shards rotating every 5s: %d calls over 276 pairs, p = %.3f", calls, p)
	if p < 0.01 {
		t.Errorf("rotating shards: unfair, p = %g", p)
	}
	p, calls = run(24, true, 1000*time.Hour, 40*time.Minute)
	t.Logf("control, shards that never rotate: %d calls, p = %.2g", calls, p)
	if p > 1e-6 {
		t.Errorf("the control passed (p = %g): the test cannot see confinement", p)
	}
}

// TestLonelyCalm: a node alone waits calmly, Lonely, with no busy loop: its
// only wakes are its announcements (and with shards, its climb to the root
// and its level checks).
func TestLonelyCalm(t *testing.T) {
	for _, sharded := range []bool{false, true} {
		mc := discovery.DefaultConfig()
		n, err := New(Config{Nodes: 300, Seed: 1, Matcher: mc, Sharded: sharded, Shard: discovery.DefaultShardConfig(mc), ShardLevel: 6,
			Latency: Uniform(20*time.Millisecond, 80*time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		steps := 0
		n.trace = func(i int, ev discovery.Event, acts []discovery.Action) {
			if i == 0 {
				steps++
			}
		}
		n.Start(0, 0, nil)
		if _, err := n.Run(time.Minute, nil); err != nil {
			t.Fatal(err)
		}
		st := n.Status(0)
		t.Logf("sharded %v: %d steps in a minute alone, level %d, %+v", sharded, steps, n.Level(0), st)
		if st.State != discovery.StateSearching || !st.Lonely {
			t.Errorf("sharded %v: %+v", sharded, st)
		}
		if limit := int(time.Minute/mc.AnnounceInterval) + 30; steps > limit {
			t.Errorf("sharded %v: %d steps in a minute alone, want at most %d", sharded, steps, limit)
		}
	}
}

// TestLonelyShardsMeet: two searchers in a big sharded network whose other
// nodes are all idle start in different shards; each is alone in its shard,
// climbs to the ancestors, and they match.
func TestLonelyShardsMeet(t *testing.T) {
	mc := discovery.DefaultConfig()
	shard := discovery.DefaultShardConfig(mc)
	n, err := New(Config{Nodes: 2000, Seed: 5, Matcher: mc, Sharded: true, Shard: shard, ShardLevel: 8,
		Latency: Uniform(20*time.Millisecond, 80*time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	// Find two nodes in different shards at the start.
	n.Run(time.Millisecond, nil)
	a, b := 0, 1
	for n.nodes[b].sh.Home() == n.nodes[a].sh.Home() {
		b++
	}
	n.Start(a, 0, nil)
	n.Start(b, 0, nil)
	ok, err := n.Run(time.Minute, func(n *Net) bool { return n.Status(a).State == discovery.StateMatched })
	if err != nil {
		t.Fatal(err)
	}
	if !ok || n.Status(a).Partner != n.Peer(b) {
		t.Fatalf("not matched after a minute: %+v, %+v", n.Status(a), n.Status(b))
	}
	t.Logf("homes %v and %v (level 8): matched after %v", n.nodes[a].sh.Home(), n.nodes[b].sh.Home(), n.Elapsed())
	if n.Elapsed() > 15*time.Second {
		t.Errorf("took %v", n.Elapsed())
	}
}

// TestLevelsConverge: newcomers that know nothing start at level 0 (the
// root, which carries a sample of every shard); they find the level of the
// network at once, and everybody stays on it.
func TestLevelsConverge(t *testing.T) {
	mc := discovery.DefaultConfig()
	sc := Scenario{Nodes: 3000, Seed: 2, Duration: 60 * time.Second, StartSpread: 5 * time.Second, CallLength: 20 * time.Second,
		Latency: Uniform(20*time.Millisecond, 80*time.Millisecond), Matcher: mc, Sharded: true,
		Shard: discovery.DefaultShardConfig(mc), ShardLevel: -1, Join: 0.2, JoinFresh: true}
	want := sc.Level()
	rep, err := RunScenario(sc)
	if err != nil {
		t.Fatal(err)
	}
	near := rep.Levels[want-1] + rep.Levels[want] + rep.Levels[want+1]
	all := 0
	for _, c := range rep.Levels {
		all += c
	}
	t.Logf("workload level %d; levels after 60s: %v; %.0f presence B/node/s (p99 %.0f)", want, rep.Levels, rep.PresenceBytes, rep.PresenceBytesP99)
	if near < 95*all/100 {
		t.Errorf("only %d of %d nodes within a level of %d: %v", near, all, want, rep.Levels)
	}
	if rep.PresenceBytesP99 > 3*rep.PresenceBytes {
		t.Errorf("p99 node moves %.0f B/s, over three times the mean %.0f", rep.PresenceBytesP99, rep.PresenceBytes)
	}
}

// TestPresenceBounded: per-node presence bytes do not grow with the
// network: eightfold more nodes, within the factor of two that discrete
// levels allow.
func TestPresenceBounded(t *testing.T) {
	mc := discovery.DefaultConfig()
	var first float64
	for _, nodes := range []int{1000, 8000} {
		sc := Scenario{Nodes: nodes, Seed: 1, Duration: 40 * time.Second, StartSpread: 2 * time.Second, CallLength: 20 * time.Second,
			Latency: Uniform(20*time.Millisecond, 80*time.Millisecond), Matcher: mc, Sharded: true,
			Shard: discovery.DefaultShardConfig(mc), ShardLevel: -1}
		rep, err := RunScenario(sc)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%5d nodes: %.0f presence B/node/s (p99 %.0f), levels %v", nodes, rep.PresenceBytes, rep.PresenceBytesP99, rep.Levels)
		if first == 0 {
			first = rep.PresenceBytes
		} else if r := rep.PresenceBytes / first; r > 2 || r < 0.5 {
			t.Errorf("%d nodes: %.0f B/node/s, %.2f times the 1000-node figure", nodes, rep.PresenceBytes, r)
		}
	}
}

// TestBaselineSafe: the baseline design runs under the same checks, and
// matches (slowly) through mutual picks.
func TestBaselineSafe(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		sc := randomScenario(seed)
		sc.Baseline, sc.Sharded = true, false
		rep, err := RunScenario(sc)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if rep.Matches == 0 && sc.Nodes > 6 {
			t.Errorf("seed %d, %d nodes: no match in %v", seed, sc.Nodes, sc.Duration)
		}
	}
}

// TestScenarioDeterministic: the same scenario gives the same report.
func TestScenarioDeterministic(t *testing.T) {
	sc := randomScenario(10)
	sc.Nodes = 40
	a, err := RunScenario(sc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := RunScenario(sc)
	if err != nil {
		t.Fatal(err)
	}
	if a.Stats != b.Stats || a.TTM != b.TTM || a.PresenceBytes != b.PresenceBytes || a.Stats.Steps == 0 {
		t.Fatalf("%+v\n!=\n%+v", a, b)
	}
}

// TestPartitionHeals: with a third of the network cut off for a while,
// nothing breaks, and after the cut heals everyone is matched again.
func TestPartitionHeals(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		n, err := New(Config{Nodes: 30, Seed: seed, Matcher: discovery.LocalConfig(), Latency: Uniform(5*time.Millisecond, 60*time.Millisecond),
			Loss: 0.05, Rematch: true, CallLength: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n.Len(); i++ {
			n.Start(i, 0, nil)
		}
		n.Partition(5*time.Second, 20*time.Second, func(i int) bool { return i%3 == 0 })
		if _, err := n.Run(40*time.Second, nil); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		// Calls of 3s: most nodes are in a call at any moment.
		in := 0
		for i := 0; i < n.Len(); i++ {
			if st := n.Status(i); st.State == discovery.StateMatched {
				in++
			}
		}
		if in < n.Len()*2/3 {
			t.Errorf("seed %d: only %d of %d matched after the partition healed", seed, in, n.Len())
		}
	}
}

// TestInterests: nodes with an interest prefer peers that share one, and
// fall back to anyone after InterestWait.
func TestInterests(t *testing.T) {
	mc := discovery.LocalConfig()
	n, err := New(Config{Nodes: 40, Seed: 1, Matcher: mc, Latency: Uniform(5*time.Millisecond, 30*time.Millisecond), Rematch: true, CallLength: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tags := make([]string, n.Len())
	for i := 0; i < n.Len(); i++ {
		tags[i] = []string{"go", "chess", "music", "films"}[i%4]
		n.Start(i, time.Duration(i)*time.Millisecond, []string{tags[i]})
	}
	shared, calls := 0, 0
	n.trace = func(i int, ev discovery.Event, acts []discovery.Action) {
		for _, a := range acts {
			if m, ok := a.(discovery.Matched); ok && m.Offerer {
				calls++
				if tags[i] == tags[n.index[m.Peer]] {
					shared++
				}
			}
		}
	}
	if _, err := n.Run(2*time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d matches shared an interest (random: about a quarter)", shared, calls)
	if shared < calls*3/4 {
		t.Errorf("only %d of %d matches shared an interest", shared, calls)
	}
	// A "go" player and a "chess" player wait InterestWait, then take each
	// other.
	n, err = New(Config{Nodes: 2, Seed: 1, Matcher: mc, Latency: Uniform(5*time.Millisecond, 30*time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	n.Start(0, 0, []string{"go"})
	n.Start(1, 0, []string{"chess"})
	ok, err := n.Run(time.Minute, func(n *Net) bool { return n.Status(0).State == discovery.StateMatched })
	if err != nil || !ok {
		t.Fatalf("lone interest never matched: %v", err)
	}
	if n.Elapsed() < mc.InterestWait {
		t.Errorf("matched after %v, before InterestWait %v", n.Elapsed(), mc.InterestWait)
	}
}

// TestRecentNeverPaired: with RecentPartners 3 and only four nodes, a node
// is never matched with one of its last three partners.
func TestRecentNeverPaired(t *testing.T) {
	mc := discovery.LocalConfig()
	mc.RecentPartners = 2
	n, err := New(Config{Nodes: 4, Seed: 9, Matcher: mc, Latency: Uniform(time.Millisecond, 20*time.Millisecond), Rematch: true, CallLength: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		n.Start(i, 0, nil)
	}
	last := make([][]discovery.PeerID, 4)
	bad := 0
	n.trace = func(i int, ev discovery.Event, acts []discovery.Action) {
		for _, a := range acts {
			if m, ok := a.(discovery.Matched); ok {
				for _, p := range last[i] {
					if p == m.Peer {
						bad++
					}
				}
			}
		}
		if c, ok := ev.(discovery.CallStarted); ok {
			if st := n.Status(i); st.MatchID == c.ID && st.InCall {
				last[i] = append(last[i], st.Partner)
				if len(last[i]) > mc.RecentPartners {
					last[i] = last[i][1:]
				}
			}
		}
	}
	if _, err := n.Run(5*time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d calls among 4 nodes", n.Stats().Calls)
	if bad > 0 || n.Stats().Calls < 50 {
		t.Errorf("%d matches with a recent partner, %d calls", bad, n.Stats().Calls)
	}
}

func TestPercentilesCensored(t *testing.T) {
	p := percentilesOf([]float64{1, 2, 3, 4}, []float64{100}, 2)
	if p.P50 != 3 || p.Over50 || p.P99 != 100 || !p.Over99 || p.RTTs50 != 1.5 {
		t.Fatalf("%+v", p)
	}
	if got := (Percentiles{}).Format(false); got != "-" {
		t.Fatal(got)
	}
	if math.IsNaN(ChiSquareP(1, 1)) {
		t.Fatal("NaN")
	}
}
