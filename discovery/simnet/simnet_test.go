package simnet

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"serendip/discovery"
)

// scenario builds the network for one liveness seed: 5 to 50 nodes starting
// within half a second, 5% loss, some crashes in the first 3 seconds, local
// or internet timers and latencies, and interests on a third of the seeds.
func scenario(t *testing.T, seed uint64, loss float64, crashes bool) *Net {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 99))
	cfg := Config{
		Nodes:      5 + r.IntN(46),
		Seed:       seed,
		Matcher:    discovery.LocalConfig(),
		MinLatency: time.Millisecond,
		MaxLatency: 50 * time.Millisecond,
		Loss:       loss,
		SilentLoss: seed%2 == 1,
		Rematch:    true,
	}
	if seed%4 == 0 {
		cfg.Matcher = discovery.DefaultConfig()
		cfg.MinLatency, cfg.MaxLatency = 20*time.Millisecond, 300*time.Millisecond
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tags := []string{"go", "chess", "music", "films"}
	for i := 0; i < cfg.Nodes; i++ {
		var in []string
		if seed%3 == 0 && r.IntN(2) == 0 {
			in = []string{tags[r.IntN(len(tags))]}
		}
		n.Start(i, time.Duration(r.Int64N(int64(500*time.Millisecond))), in)
		if crashes && r.IntN(10) == 0 {
			n.Crash(i, time.Duration(r.Int64N(int64(3*time.Second))))
		}
	}
	return n
}

// TestLiveness: over 200 seeds, everybody searching gets matched (all live
// nodes in calls, bar one when their number is odd) and no invariant breaks.
func TestLiveness(t *testing.T) {
	seeds := 200
	if testing.Short() || raceEnabled {
		seeds = 20
	}
	var mu sync.Mutex
	var total Stats
	var settle []time.Duration
	worst := 0.0
	t.Run("seeds", func(t *testing.T) {
		for seed := uint64(1); seed <= uint64(seeds); seed++ {
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				t.Parallel()
				n := scenario(t, seed, 0.05, true)
				ok, err := n.Run(3*time.Minute, func(n *Net) bool { return n.Elapsed() > time.Second && n.Settled() })
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					t.Fatalf("%d nodes not settled after %v: %s", n.Len(), n.Elapsed(), describe(n))
				}
				s := n.Stats()
				mu.Lock()
				defer mu.Unlock()
				addStats(&total, s)
				settle = append(settle, n.Elapsed())
				if c := float64(s.Claims) / float64(max(1, s.Calls)); c > worst {
					worst = c
				}
			})
		}
	})
	sort.Slice(settle, func(i, j int) bool { return settle[i] < settle[j] })
	if len(settle) > 0 {
		t.Logf("%d seeds: %d calls, %.2f claims per call (worst seed %.2f), %d half-matches, %d abandoned, %d crashes; settled in median %v, max %v",
			len(settle), total.Calls, float64(total.Claims)/float64(total.Calls), worst, total.HalfMatches, total.Abandoned, total.Crashes,
			settle[len(settle)/2], settle[len(settle)-1])
	}
}

// TestNoLoss: without loss or crashes every match becomes a call (no
// half-matches, no abandoned claims) and everyone but an odd one out is in a
// call.
func TestNoLoss(t *testing.T) {
	var total Stats
	defer func() {
		t.Logf("50 seeds: %d calls, %.2f claims per call", total.Calls, float64(total.Claims)/float64(total.Calls))
	}()
	for seed := uint64(1000); seed < 1050; seed++ {
		n := scenario(t, seed, 0, false)
		ok, err := n.Run(time.Minute, func(n *Net) bool { return n.Elapsed() > time.Second && n.Settled() })
		if err != nil || !ok {
			t.Fatalf("seed %d: %v settled=%v: %s", seed, err, ok, describe(n))
		}
		s := n.Stats()
		if s.HalfMatches != 0 || s.Abandoned != 0 || s.Calls != n.Len()/2 {
			t.Fatalf("seed %d, %d nodes: %+v", seed, n.Len(), s)
		}
		addStats(&total, s)
	}
}

// TestContention: N nodes press Start at the same instant; claims per call
// must stay small as N grows.
func TestContention(t *testing.T) {
	for _, size := range []int{10, 50, 200} {
		var total Stats
		seeds := uint64(2000 / size)
		if testing.Short() || raceEnabled {
			seeds = max(1, seeds/10)
		}
		for seed := uint64(1); seed <= seeds; seed++ {
			n, err := New(Config{Nodes: size, Seed: seed, Matcher: discovery.LocalConfig(), MinLatency: 5 * time.Millisecond, MaxLatency: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n.Len(); i++ {
				n.Start(i, 0, nil)
			}
			ok, err := n.Run(time.Minute, func(n *Net) bool { return n.Elapsed() > 0 && n.Settled() })
			if err != nil || !ok {
				t.Fatalf("%d nodes, seed %d: %v settled=%v: %s", size, seed, err, ok, describe(n))
			}
			addStats(&total, n.Stats())
		}
		perCall := float64(total.Claims) / float64(total.Calls)
		t.Logf("%3d nodes at once, %2d seeds: %.2f claims per call, %.0f messages per node", size, seeds, perCall, float64(total.Messages)/float64(size*int(seeds)))
		if perCall > 1.5 {
			t.Fatalf("%d nodes: %.2f claims per call", size, perCall)
		}
	}
}

// TestChurn: bots in auto mode hang up after a few seconds and search again,
// with loss and a crash, for a simulated minute.
func TestChurn(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		cfg := Config{Nodes: 20, Seed: seed, Matcher: discovery.LocalConfig(), MinLatency: time.Millisecond, MaxLatency: 80 * time.Millisecond,
			Loss: 0.05, CallLength: 3 * time.Second, Rematch: true}
		n, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n.Len(); i++ {
			n.Start(i, time.Duration(i)*10*time.Millisecond, nil)
		}
		n.Crash(0, 20*time.Second)
		if _, err := n.Run(time.Minute, nil); err != nil {
			t.Fatal(err)
		}
		s := n.Stats()
		t.Logf("seed %d: %d calls, %.2f claims per call, %d half-matches", seed, s.Calls, float64(s.Claims)/float64(s.Calls), s.HalfMatches)
		// About 19 nodes, calls of 3s on average, a minute: ~190 calls if
		// nobody ever waited.
		if s.Calls < 140 {
			t.Fatalf("seed %d: only %d calls: %+v", seed, s.Calls, s)
		}
		for i := 1; i < n.Len(); i++ {
			if n.Calls(i) < 5 {
				t.Fatalf("seed %d: node %d had %d calls", seed, i, n.Calls(i))
			}
		}
	}
}

// TestFairness: every pair of 6 nodes that start together is equally likely
// to be matched.
func TestFairness(t *testing.T) {
	pairs := map[[2]int]int{}
	total := 0
	for seed := uint64(1); seed <= 500; seed++ {
		n, err := New(Config{Nodes: 6, Seed: seed, Matcher: discovery.LocalConfig(), MinLatency: time.Millisecond, MaxLatency: 30 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(seed, 7))
		for i := 0; i < n.Len(); i++ {
			n.Start(i, time.Duration(r.Int64N(int64(300*time.Millisecond))), nil)
		}
		if ok, err := n.Run(time.Minute, func(n *Net) bool { return n.Elapsed() > time.Second && n.Settled() }); err != nil || !ok {
			t.Fatalf("seed %d: %v %v", seed, ok, err)
		}
		for p, c := range n.Pairs() {
			pairs[p] += c
			total += c
		}
	}
	want := float64(total) / 15
	chi := 0.0
	for i := 0; i < 6; i++ {
		for j := i + 1; j < 6; j++ {
			d := float64(pairs[[2]int{i, j}]) - want
			chi += d * d / want
		}
	}
	t.Logf("%d calls over 15 pairs, chi-square %.1f (14 degrees of freedom)", total, chi)
	if chi > 36.1 { // p < 0.001
		t.Fatalf("unfair: %v", pairs)
	}
}

func TestBlockNeverMatched(t *testing.T) {
	cfg := Config{Nodes: 4, Seed: 5, Matcher: discovery.LocalConfig(), MinLatency: time.Millisecond, MaxLatency: 20 * time.Millisecond,
		CallLength: time.Second, Rematch: true}
	cfg.Matcher.RecentPartners = 0
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Block(0, 1, 0)
	for i := 0; i < n.Len(); i++ {
		n.Start(i, time.Millisecond, nil)
	}
	if _, err := n.Run(5*time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	if c := n.Pairs()[[2]int{0, 1}]; c != 0 {
		t.Fatalf("blocked pair had %d calls", c)
	}
	if n.Stats().Calls < 100 {
		t.Fatalf("%+v", n.Stats())
	}
}

func TestDeterministic(t *testing.T) {
	a, b := scenario(t, 42, 0.05, true), scenario(t, 42, 0.05, true)
	if _, err := a.Run(20*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Run(20*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	if a.Stats() != b.Stats() || a.Stats().Steps == 0 {
		t.Fatalf("%+v != %+v", a.Stats(), b.Stats())
	}
}

func TestCheckHolders(t *testing.T) {
	id := discovery.MatchID{1}
	a, b, c := discovery.PeerID("a"), discovery.PeerID("b"), discovery.PeerID("c")
	st := func(p discovery.PeerID, off bool) discovery.Status {
		return discovery.Status{State: discovery.StateMatched, Partner: p, MatchID: id, Offerer: off}
	}
	tests := []struct {
		ids  []discovery.PeerID
		sts  []discovery.Status
		good bool
	}{
		{[]discovery.PeerID{a}, []discovery.Status{st(b, true)}, true},
		{[]discovery.PeerID{a, b}, []discovery.Status{st(b, true), st(a, false)}, true},
		{[]discovery.PeerID{a, b}, []discovery.Status{st(b, true), st(c, false)}, false},
		{[]discovery.PeerID{a, b}, []discovery.Status{st(b, true), st(a, true)}, false},
		{[]discovery.PeerID{a, b}, []discovery.Status{st(b, false), st(a, false)}, false},
		{[]discovery.PeerID{a, b, c}, []discovery.Status{st(b, true), st(a, false), st(b, false)}, false},
	}
	for i, tt := range tests {
		if got := checkHolders(tt.ids, tt.sts); (got == "") != tt.good {
			t.Errorf("case %d: %q", i, got)
		}
	}
}

func TestNewErrors(t *testing.T) {
	good := Config{Nodes: 2, Matcher: discovery.LocalConfig()}
	for _, mod := range []func(*Config){
		func(c *Config) { c.Nodes = 0 },
		func(c *Config) { c.Matcher.ClaimTimeout = 0 },
		func(c *Config) { c.MinLatency = 2; c.MaxLatency = 1 },
		func(c *Config) { c.Loss = 1 },
	} {
		c := good
		mod(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

// raceEnabled is set under the race detector (race_test.go).
var raceEnabled bool

func addStats(t *Stats, s Stats) {
	t.Claims += s.Claims
	t.Matches += s.Matches
	t.Calls += s.Calls
	t.HalfMatches += s.HalfMatches
	t.Abandoned += s.Abandoned
	t.Messages += s.Messages
	t.Lost += s.Lost
	t.Crashes += s.Crashes
	t.Steps += s.Steps
}

func describe(n *Net) string {
	s := ""
	for i := 0; i < n.Len(); i++ {
		st := n.Status(i)
		if !n.Alive(i) || (st.State == discovery.StateMatched && st.InCall) {
			continue
		}
		s += fmt.Sprintf("\n  node %d: %v partner=%s pool=%d wake=%v", i, st.State, st.Partner, st.PoolSize, st.NextWake.Sub(n.start))
	}
	return s
}
