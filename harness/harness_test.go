package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"serendip/node"
)

func TestPercentiles(t *testing.T) {
	var xs []float64
	for i := 100; i >= 1; i-- {
		xs = append(xs, float64(i))
	}
	p := percentiles(xs)
	if p.Count != 100 || p.P50 != 50 || p.P95 != 95 || p.P99 != 99 || p.Max != 100 || p.Mean != 50.5 {
		t.Errorf("percentiles(1..100) = %+v", p)
	}
	if p := percentiles([]float64{7}); p.P50 != 7 || p.P99 != 7 {
		t.Errorf("percentiles(7) = %+v", p)
	}
	if p := percentiles(nil); p.Count != 0 {
		t.Errorf("percentiles(nil) = %+v", p)
	}
}

func TestFairness(t *testing.T) {
	// Every node met each of its 9 candidates once: as even as it gets.
	var even, skewed []fairnessInput
	for i := range 10 {
		in := fairnessInput{partners: map[string]int{}, candidates: 9}
		for j := range 9 {
			in.partners[string(rune('a'+j))] = 1
		}
		even = append(even, in)
		// Nine calls, all with the same partner.
		skewed = append(skewed, fairnessInput{partners: map[string]int{string(rune('a' + i)): 9}, candidates: 9})
	}
	fe, fs := fairness(even), fairness(skewed)
	if fe.PValue == nil || *fe.PValue < 0.99 || fe.RepeatShare != 0 {
		t.Errorf("even: %+v (p %v)", fe, deref(fe.PValue))
	}
	if fs.PValue == nil || *fs.PValue > 1e-6 || fs.RepeatShare < 0.8 {
		t.Errorf("skewed: %+v (p %v)", fs, deref(fs.PValue))
	}
	if f := fairness([]fairnessInput{{partners: map[string]int{"a": 3}, candidates: 1}}); f.PValue != nil {
		t.Errorf("no choice: p = %v; want none", *f.PValue)
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func TestDoubleMatchDetection(t *testing.T) {
	cases := []struct {
		name   string
		claims [][3]string // match, node, partner
		double bool
	}{
		{"agreeing pair", [][3]string{{"m", "A", "B"}, {"m", "B", "A"}, {"m", "A", "B"}}, false},
		{"one side only", [][3]string{{"m", "A", "B"}}, false},
		{"partner names another", [][3]string{{"m", "A", "B"}, {"m", "B", "C"}}, true},
		{"partner named another first", [][3]string{{"m", "B", "C"}, {"m", "A", "B"}}, true},
		{"two partners under one id", [][3]string{{"m", "A", "B"}, {"m", "A", "C"}}, true},
		{"a third node", [][3]string{{"m", "A", "B"}, {"m", "C", "D"}}, true},
		{"two matches", [][3]string{{"m", "A", "B"}, {"n", "B", "C"}, {"n", "C", "B"}}, false},
	}
	for _, c := range cases {
		r := &run{matches: map[string]map[string]string{}, doubles: map[string]string{}, log: slog.New(slog.DiscardHandler)}
		for _, a := range c.claims {
			r.assert(a[0], a[1], a[2])
		}
		if got := len(r.doubles) > 0; got != c.double {
			t.Errorf("%s: double = %v (%v); want %v", c.name, got, r.doubles, c.double)
		}
	}
}

func TestStuckRules(t *testing.T) {
	now := time.Now()
	mk := func(state string, since time.Duration, bot bool) *tracked {
		tr := &tracked{sampled: true, bot: bot, last: node.State{State: state}, since: now.Add(-since)}
		if state == "searching" {
			tr.search = now.Add(-since)
		}
		return tr
	}
	cases := []struct {
		name  string
		nodes []*tracked
		stuck int
	}{
		{"matched within the setup timeout", []*tracked{mk("matched", 12*time.Second, true)}, 0},
		{"matched past it", []*tracked{mk("matched", 16*time.Second, true)}, 1},
		{"searching alone", []*tracked{mk("searching", 60*time.Second, true)}, 0},
		{"searching with the recent partner only", []*tracked{mk("searching", 60*time.Second, true), mk("searching", 60*time.Second, true)}, 0},
		{"searching with two others", []*tracked{
			mk("searching", 20*time.Second, true), mk("searching", 30*time.Second, true), mk("searching", 40*time.Second, true),
		}, 3},
		{"others only just searching", []*tracked{
			mk("searching", 20*time.Second, true), mk("searching", time.Second, true), mk("searching", time.Second, true),
		}, 0},
		{"idle bot", []*tracked{mk("idle", 20*time.Second, true)}, 1},
		{"idle person", []*tracked{mk("idle", 20*time.Second, false)}, 0},
		{"long call", []*tracked{mk("in_call", time.Hour, true)}, 0},
	}
	for _, c := range cases {
		r := &run{nodes: c.nodes, setup: 10 * time.Second, recent: 1, log: slog.New(slog.DiscardHandler)}
		r.checkStuck(now)
		if len(r.stuck) != c.stuck {
			t.Errorf("%s: %d stuck (%+v); want %d", c.name, len(r.stuck), r.stuck, c.stuck)
		}
	}
}

// The default shard target keeps what the machine spends on presence
// near 200 nodes' spending: 24 up to 200 nodes, then 4800/n, at least 4.
func TestDefaultShardTarget(t *testing.T) {
	for _, c := range []struct{ nodes, want int }{
		{1, 24}, {200, 24}, {201, 23}, {300, 16}, {400, 12}, {600, 8}, {1000, 4}, {1200, 4}, {100000, 4},
	} {
		if got := DefaultShardTarget(c.nodes); got != c.want {
			t.Errorf("DefaultShardTarget(%d) = %d, want %d", c.nodes, got, c.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.Scenario = "storm" },
		func(c *Config) { c.Media = "video" },
		func(c *Config) { c.Nodes = 0 },
		func(c *Config) { c.Nodes = 1 },
		func(c *Config) { c.Relays = 0 },
		func(c *Config) { c.Duration = 0 },
		func(c *Config) { c.CallTime = -time.Second },
		func(c *Config) { c.VideoFile = "" },
		func(c *Config) { c.ShardTarget = 1 },
		func(c *Config) { c.ShardTarget = -4 },
	}
	for i, f := range bad {
		c := DefaultConfig()
		f(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("case %d: Validate() = %v; want ErrConfig", i, err)
		}
	}
	c := DefaultConfig()
	c.Scenario, c.Nodes = Lonely, 1
	if err := c.Validate(); err != nil {
		t.Errorf("one lonely node: %v", err)
	}
	c = DefaultConfig()
	c.ShardTarget = 2
	if err := c.Validate(); err != nil {
		t.Errorf("shard target 2: %v", err)
	}
}

// runShort runs a scenario in process with the default clips and checks the
// invariants and the report's shape.
func runShort(t *testing.T, sc Scenario, nodes int, d time.Duration) *Report {
	t.Helper()
	if testing.Short() {
		t.Skip("runs real nodes for seconds; skipped in -short")
	}
	cfg := DefaultConfig()
	cfg.Scenario, cfg.Nodes, cfg.Duration = sc, nodes, d
	cfg.VideoFile = filepath.Join("..", cfg.VideoFile) // the defaults are from the repository root
	cfg.AudioFile = filepath.Join("..", cfg.AudioFile)
	cfg.Seed = uint64(time.Now().UnixNano())
	if os.Getenv("SERENDIP_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		cfg.Progress = os.Stderr
	}
	before := runtime.NumGoroutine()
	rep, err := Run(context.Background(), cfg)
	if rep == nil {
		t.Fatalf("no report: %v", err)
	}
	t.Logf("seed %d\n%s", cfg.Seed, rep.Table())
	if err != nil {
		t.Errorf("Run: %v", err)
	}
	if rep.DoubleMatches != 0 || rep.StuckNodes != 0 || rep.CallsWithoutMedia != 0 {
		t.Errorf("invariants: %d double matches, %d stuck nodes, %d calls without media",
			rep.DoubleMatches, rep.StuckNodes, rep.CallsWithoutMedia)
	}
	// The JSON carries the stable names.
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"nodes"`, `"calls_completed"`, `"calls_failed"`, `"double_matches"`, `"stuck_nodes"`,
		`"time_to_match_ms":{"count"`, `"time_to_first_frame_ms":{"count"`, `"p50"`, `"p95"`, `"p99"`, `"rss_bytes_per_node"`, `"cpu_seconds"`, `"slow_loop_steps"`, `"sign_us"`, `"loopback_rtt_us"`, `"connects_by"`} {
		if !bytes.Contains(b, []byte(k)) {
			t.Errorf("JSON report lacks %s", k)
		}
	}
	var html bytes.Buffer
	if err := rep.WriteHTML(&html, "test"); err != nil {
		t.Fatal(err)
	}
	if h := html.String(); !strings.Contains(h, "<svg") || strings.Contains(h, "<script") || strings.Contains(h, `src="http`) || strings.Contains(h, `href="http`) {
		t.Error("HTML report: want inline SVG plots, no script, nothing fetched")
	}
	// Every node's goroutines end with the run (libp2p keeps a few of its
	// own for good, hence the slack).
	if !settle(context.Background(), 10*time.Second, func() bool { return runtime.NumGoroutine() <= before+20 }) {
		t.Errorf("goroutines: %d before the run, %d ten seconds after it", before, runtime.NumGoroutine())
	}
	return rep
}

func TestSteady(t *testing.T) {
	rep := runShort(t, Steady, 8, 10*time.Second)
	if rep.CallsCompleted == 0 || rep.TimeToMatch.Count == 0 || rep.TimeToFirstFrame.Count == 0 {
		t.Errorf("steady: %d calls, %d matches timed, %d first frames timed; want some of each",
			rep.CallsCompleted, rep.TimeToMatch.Count, rep.TimeToFirstFrame.Count)
	}
	// Eight nodes meet at the network's rendezvous: the counters see it.
	if r := rep.Traffic.ConnectsBy["rendezvous"]; r <= 0 {
		t.Errorf("steady: rendezvous connections per node per second %v; want some", r)
	}
	// The timeline says how busy the machine was (8 nodes calling keep a
	// core's hundredth busy at least).
	busy := 0
	for _, s := range rep.Timeline {
		if s.CPU > 0 && s.CPU <= 1.5 {
			busy++
		}
	}
	if busy < len(rep.Timeline)/2 {
		t.Errorf("steady: %d of %d samples with a CPU share in (0, 1.5]; want most", busy, len(rep.Timeline))
	}
}

func TestChurn(t *testing.T) {
	rep := runShort(t, Churn, 10, 12*time.Second)
	kills := 0
	for _, n := range rep.Kills {
		kills += n
	}
	if kills == 0 || rep.NodesLaunched != 10+kills {
		t.Errorf("churn: %d kills, %d nodes launched; want some kills, each replaced", kills, rep.NodesLaunched)
	}
}

func TestNextStorm(t *testing.T) {
	rep := runShort(t, NextStorm, 6, 10*time.Second)
	if len(rep.Storms) == 0 {
		t.Error("next-storm: no storm")
	}
}

func TestLonely(t *testing.T) {
	rep := runShort(t, Lonely, 2, 10*time.Second)
	if rep.Lonely == nil || !rep.Lonely.LonelyWhileAlone || rep.Lonely.PairedMs == nil {
		t.Errorf("lonely: %+v", rep.Lonely)
	}
}

// fakeLauncher launches members whose states and histories are scripted,
// to drive the invariant checks end to end.
type fakeLauncher struct {
	states []node.State
	hist   [][]node.CallRecord
}

func (f *fakeLauncher) startRelays(context.Context, int) error { return nil }
func (f *fakeLauncher) launch(_ context.Context, spec nodeSpec) (member, error) {
	return &fakeMember{st: f.states[spec.index], h: f.hist[spec.index]}, nil
}
func (f *fakeLauncher) traffic() (classBytes, bool)          { return nil, false }
func (f *fakeLauncher) relayTraffic() (uint64, uint64, bool) { return 0, 0, false }
func (f *fakeLauncher) connections() (uint64, uint64, bool)  { return 0, 0, false }
func (f *fakeLauncher) sharedSignatureChecks() uint64        { return 0 }
func (f *fakeLauncher) rss() (int64, bool)                   { return 0, false }
func (f *fakeLauncher) close() error                         { return nil }
func (f *fakeLauncher) mode() string                         { return "fake" }

type fakeMember struct {
	st node.State
	h  []node.CallRecord
}

func (m *fakeMember) PeerID() string                                     { return m.st.PeerID }
func (m *fakeMember) State(context.Context) (node.State, error)          { return m.st, nil }
func (m *fakeMember) History(context.Context) ([]node.CallRecord, error) { return m.h, nil }
func (m *fakeMember) Metrics(context.Context) (node.Metrics, bool)       { return node.Metrics{}, false }
func (m *fakeMember) Start(context.Context) error                        { return nil }
func (m *fakeMember) Next(context.Context) error                         { return nil }
func (m *fakeMember) Chat(context.Context, string) error                 { return errNoChat }
func (m *fakeMember) Kill() error                                        { return nil }
func (m *fakeMember) Close() error                                       { return nil }
func (m *fakeMember) Usage() (procUsage, bool)                           { return procUsage{}, false }

// TestInvariantsFailTheRun: a double match or a call without media makes
// Run return ErrInvariant, with a report naming it.
func TestInvariantsFailTheRun(t *testing.T) {
	at := time.Now()
	call := func(id, partner string, video uint64) node.CallRecord {
		return node.CallRecord{MatchID: id, Partner: partner, Connected: true, Reason: "next",
			MatchedAt: at, EndedAt: at.Add(3 * time.Second), SetupMillis: 10,
			VideoFramesReceived: video, AudioPacketsReceived: 100}
	}
	cases := []struct {
		name string
		f    *fakeLauncher
		want func(*Report) bool
	}{
		{"double match", &fakeLauncher{
			states: []node.State{
				{PeerID: "A", State: "in_call", Partner: "B", MatchID: "m1"},
				{PeerID: "B", State: "in_call", Partner: "C", MatchID: "m1"},
				{PeerID: "C", State: "in_call", Partner: "B", MatchID: "m1"},
			},
			hist: make([][]node.CallRecord, 3),
		}, func(r *Report) bool { return r.DoubleMatches == 1 }},
		{"call without media", &fakeLauncher{
			states: []node.State{{PeerID: "A", State: "searching"}, {PeerID: "B", State: "searching"}},
			hist:   [][]node.CallRecord{{call("m2", "B", 0)}, {call("m2", "A", 45)}},
		}, func(r *Report) bool { return r.CallsWithoutMedia == 1 && r.CallsCompleted == 1 }},
		{"all well", &fakeLauncher{
			states: []node.State{{PeerID: "A", State: "searching"}, {PeerID: "B", State: "searching"}},
			hist:   [][]node.CallRecord{{call("m3", "B", 45)}, {call("m3", "A", 45)}},
		}, func(r *Report) bool { return r.OK() && r.CallsCompleted == 1 }},
	}
	for _, c := range cases {
		cfg := DefaultConfig()
		cfg.Nodes, cfg.Duration, cfg.SampleInterval = len(c.f.states), 300*time.Millisecond, 50*time.Millisecond
		cfg.Logger, cfg.Network = slog.New(slog.DiscardHandler), "fake"
		rep, err := runWith(context.Background(), cfg, c.f)
		if rep == nil || !c.want(rep) {
			t.Errorf("%s: report %+v", c.name, rep)
			continue
		}
		if wantErr := c.name != "all well"; errors.Is(err, ErrInvariant) != wantErr {
			t.Errorf("%s: Run error %v; want ErrInvariant: %v", c.name, err, wantErr)
		}
	}
}

func TestStartShardLevel(t *testing.T) {
	for _, tt := range []struct {
		n, target int
		perNode   float64
		want      int
	}{
		{2, 8, 1, 0}, {15, 8, 1, 0}, {16, 8, 1, 1}, {200, 8, 1, 4}, {1000, 8, 1, 6}, {1000, 16, 1, 5},
		{1000, 24, 1, 5}, {1000, 24, 0.125, 2}, {1000, 24, 0, 0}, {1 << 40, 2, 1, 30}, // discovery.MaxShardLevel
	} {
		if got := startShardLevel(tt.n, tt.target, tt.perNode); got != tt.want {
			t.Errorf("startShardLevel(%d, %d, %v) = %d, want %d", tt.n, tt.target, tt.perNode, got, tt.want)
		}
	}
	for _, tt := range []struct {
		call time.Duration
		want float64
	}{{time.Second, 1}, {3 * time.Second, 1}, {7 * time.Second, 0.5}, {0, 1}} {
		if got := presencePerNode(tt.call, 2*time.Second); got != tt.want {
			t.Errorf("presencePerNode(%v, 2s) = %v, want %v", tt.call, got, tt.want)
		}
	}
}

// The node hosts' connection managers keep within the open file limit.
func TestNodeConnLimits(t *testing.T) {
	for _, c := range []struct {
		nodes     int
		limit     uint64
		low, high int
	}{
		{200, 20000, 16, 32},
		{1000, 20000, 4, 9},
		{1000, 0, 16, 32},
		{5000, 20000, 3, 6},
	} {
		low, high := nodeConnLimits(c.nodes, c.limit)
		if low != c.low || high != c.high {
			t.Errorf("%d nodes, %d files: %d past %d; want %d past %d", c.nodes, c.limit, low, high, c.low, c.high)
		}
	}
}

// rampLauncher is a fakeLauncher that notes when each node was launched.
type rampLauncher struct {
	fakeLauncher
	mu sync.Mutex
	at []time.Time
}

func (f *rampLauncher) launch(ctx context.Context, spec nodeSpec) (member, error) {
	f.mu.Lock()
	f.at = append(f.at, time.Now())
	f.mu.Unlock()
	return f.fakeLauncher.launch(ctx, spec)
}

// The host's speed comes out as a plausible signing time and loopback round
// trip: well above zero (they were measured) and far below 5 ms on
// anything that can run the harness.
func TestHostSpeed(t *testing.T) {
	if us := signMicros(); us < 1 || us > 5000 {
		t.Errorf("signMicros() = %.2f µs; want between 1 and 5,000", us)
	}
	if us := loopbackMicros(); us < 1 || us > 5000 {
		t.Errorf("loopbackMicros() = %.2f µs; want between 1 and 5,000", us)
	}
}

// TestRamp: Config.Ramp spreads a steady launch, not a cold start.
func TestRamp(t *testing.T) {
	for _, c := range []struct {
		sc          Scenario
		least, most time.Duration
	}{
		{Steady, 400 * time.Millisecond, 900 * time.Millisecond},
		{ColdStart, 0, 100 * time.Millisecond},
	} {
		f := &rampLauncher{fakeLauncher: fakeLauncher{
			states: make([]node.State, 4), hist: make([][]node.CallRecord, 4),
		}}
		for i := range f.states {
			f.states[i] = node.State{PeerID: fmt.Sprint("P", i), State: "searching"}
		}
		cfg := DefaultConfig()
		cfg.Scenario, cfg.Nodes, cfg.Ramp = c.sc, 4, 600*time.Millisecond
		cfg.Duration, cfg.SampleInterval = time.Second, 50*time.Millisecond
		cfg.Logger, cfg.Network = slog.New(slog.DiscardHandler), "fake"
		if _, err := runWith(context.Background(), cfg, f); err != nil && !errors.Is(err, ErrInvariant) {
			t.Fatalf("%s: %v", c.sc, err)
		}
		f.mu.Lock()
		if len(f.at) != 4 {
			t.Fatalf("%s: %d launches; want 4", c.sc, len(f.at))
		}
		spread := slices.MaxFunc(f.at, time.Time.Compare).Sub(slices.MinFunc(f.at, time.Time.Compare))
		f.mu.Unlock()
		if spread < c.least || spread > c.most {
			t.Errorf("%s with a 600 ms ramp: launches spread over %v; want %v to %v", c.sc, spread, c.least, c.most)
		}
	}
}
