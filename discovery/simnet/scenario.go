package simnet

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"serendip/discovery"
)

// Scenario is one workload: the unit of `serendip sim` and of the seeded
// test suite. Run it with RunScenario.
type Scenario struct {
	Nodes int
	Seed  uint64
	// Baseline runs the descendant design (see baseline) on the workload.
	Baseline bool
	// Duration is the simulated time.
	Duration time.Duration
	// StartSpread: nodes press Start at uniform times in [0, StartSpread);
	// zero starts them all at once (full contention).
	StartSpread time.Duration
	// CallLength: calls last [CallLength/2, 3*CallLength/2), then one side
	// presses Next and both search again. Zero: calls never end.
	CallLength time.Duration
	Latency    Latency
	Loss       float64
	SilentLoss bool
	// Crash, Leave and Join are fractions of the nodes: crashing at a
	// random time, pressing Stop at a random time, or coming online (and
	// pressing Start) at a random time in the first half of the run.
	Crash, Leave, Join float64
	// Partition, if positive, cuts that fraction of the nodes off from the
	// rest for the middle fifth of the run.
	Partition float64
	// Interests is the fraction of nodes that search with one of four tags.
	Interests float64
	Matcher   discovery.Config
	// Sharded runs presence over shards (Shard), every node starting at
	// ShardLevel, or at the level the workload calls for if ShardLevel < 0.
	Sharded    bool
	Shard      discovery.ShardConfig
	ShardLevel int
	// JoinFresh: the nodes that Join do not know the network's level (see
	// Config.JoinFresh).
	JoinFresh bool
	// KeepGoing counts invariant violations instead of stopping at the
	// first.
	KeepGoing bool
	// Until, if set, ends the run early once it returns true.
	Until func(*Net) bool
}

// Percentiles of a time to match, in milliseconds. Over marks a value that
// is only a lower bound: searches still open at the end of the run (for
// over 10s) count with their age so far.
type Percentiles struct {
	P50    float64 `json:"p50_ms"`
	P95    float64 `json:"p95_ms"`
	P99    float64 `json:"p99_ms"`
	Over50 bool    `json:"p50_lower_bound,omitempty"`
	Over95 bool    `json:"p95_lower_bound,omitempty"`
	Over99 bool    `json:"p99_lower_bound,omitempty"`
	// The same in round trips (RTT).
	RTTs50 float64 `json:"p50_rtts"`
	RTTs95 float64 `json:"p95_rtts"`
	RTTs99 float64 `json:"p99_rtts"`
	// Samples: searches that matched; Open: searches still open after 10s.
	Samples int `json:"samples"`
	Open    int `json:"open"`

	rttMilliseconds float64
}

// Report is what one scenario measured.
type Report struct {
	Design    string        `json:"design"`
	Nodes     int           `json:"nodes"`
	Simulated time.Duration `json:"simulated_ns"`
	Wall      time.Duration `json:"wall_ns"`
	Steps     int           `json:"steps"`
	RTT       time.Duration `json:"rtt_ns"`
	// Matches counts calls started (pairs).
	Matches int `json:"matches"`
	// TTM runs from a search's start to Matched; TTMWarm from the moment
	// the searcher first had a peer in its pool (0 if it was claimed
	// before).
	TTM     Percentiles `json:"ttm"`
	TTMWarm Percentiles `json:"ttm_warm"`
	// ClaimsPerMatch and MessagesPerMatch: claims sent, and presence
	// messages published plus claims plus replies, per call started.
	ClaimsPerMatch   float64 `json:"claims_per_match"`
	MessagesPerMatch float64 `json:"messages_per_match"`
	// PresenceBytes is presence bytes moved (received and forwarded) per
	// online node per second: the mean, and the 99th percentile over
	// nodes (sharded runs).
	PresenceBytes    float64 `json:"presence_bytes_per_node_s"`
	PresenceBytesP99 float64 `json:"presence_bytes_per_node_s_p99"`
	// DoubleMatches and Stuck count safety and liveness violations.
	DoubleMatches int      `json:"double_matches"`
	Stuck         int      `json:"stuck"`
	Violations    []string `json:"violations,omitempty"`
	// Levels: how many nodes ended at each shard level.
	Levels map[int]int `json:"levels,omitempty"`
	// FairnessP: the p-value of a chi-square test that calls fell evenly
	// on all pairs (runs of at most 4096 nodes without crashes and with at
	// least five calls per pair; nil otherwise).
	FairnessP *float64 `json:"fairness_p,omitempty"`
	Stats     Stats    `json:"stats"`
}

// Level returns the shard level a workload calls for: a shard should carry
// Target messages per AnnounceInterval, and each search sends about two
// (its first announcement and its withdraw).
func (sc Scenario) Level() int {
	if !sc.Sharded {
		return 0
	}
	ai := sc.Matcher.AnnounceInterval
	perAI := float64(sc.Nodes)
	if sc.CallLength > 0 {
		perAI *= min(1, float64(ai)/float64(sc.CallLength))
	}
	l := math.Round(math.Log2(2 * perAI / float64(sc.Shard.Target)))
	return int(max(0, min(l, float64(sc.Shard.MaxLevel))))
}

// Build makes the network of sc and schedules its workload.
func (sc Scenario) Build() (*Net, error) {
	level := sc.ShardLevel
	if level < 0 {
		level = sc.Level()
	}
	cfg := Config{
		Nodes: sc.Nodes, Seed: sc.Seed, Matcher: sc.Matcher,
		Sharded: sc.Sharded, Shard: sc.Shard, ShardLevel: level, JoinFresh: sc.JoinFresh,
		Baseline: sc.Baseline, Latency: sc.Latency, Loss: sc.Loss, SilentLoss: sc.SilentLoss,
		CallLength: sc.CallLength, Rematch: true, KeepGoing: sc.KeepGoing,
	}
	n, err := New(cfg)
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(sc.Seed, 0x5ce4a710))
	tags := []string{"go", "chess", "music", "films"}
	uniform := func(d time.Duration) time.Duration {
		if d <= 0 {
			return 0
		}
		return time.Duration(r.Int64N(int64(d)))
	}
	for i := 0; i < sc.Nodes; i++ {
		var in []string
		if sc.Interests > 0 && r.Float64() < sc.Interests {
			in = []string{tags[r.IntN(len(tags))]}
		}
		start := uniform(sc.StartSpread)
		if sc.Join > 0 && r.Float64() < sc.Join {
			start = uniform(sc.Duration / 2)
			n.Join(i, start)
		}
		n.Start(i, start, in)
		if sc.Crash > 0 && r.Float64() < sc.Crash {
			n.Crash(i, uniform(sc.Duration))
		}
		if sc.Leave > 0 && r.Float64() < sc.Leave {
			n.Stop(i, uniform(sc.Duration))
		}
	}
	if sc.Partition > 0 {
		cut := make([]bool, sc.Nodes)
		for i := range cut {
			cut[i] = r.Float64() < sc.Partition
		}
		n.Partition(2*sc.Duration/5, sc.Duration/5, func(i int) bool { return cut[i] })
	}
	return n, nil
}

// RunScenario builds and runs sc and reports what it measured. It returns
// an error for a broken invariant unless sc.KeepGoing (then the report
// counts them).
func RunScenario(sc Scenario) (Report, error) {
	began := time.Now()
	n, err := sc.Build()
	if err != nil {
		return Report{}, err
	}
	if _, err := n.Run(sc.Duration, sc.Until); err != nil {
		return Report{}, err
	}
	rep := n.Report()
	rep.Wall = time.Since(began)
	return rep, nil
}

// Report summarises the run so far.
func (n *Net) Report() Report {
	r := Report{
		Design: "serendip", Nodes: len(n.nodes), Simulated: time.Duration(n.now), Steps: n.stats.Steps,
		RTT: n.rtt, Matches: n.stats.Calls, Stats: n.stats,
	}
	if n.cfg.Baseline {
		r.Design = "baseline"
	}
	if n.stats.Calls > 0 {
		c := float64(n.stats.Calls)
		r.ClaimsPerMatch = float64(n.stats.Claims) / c
		r.MessagesPerMatch = float64(n.stats.Presence+n.stats.Claims+n.stats.Replies) / c
	}
	var openStart, openWarm []float64
	for _, nd := range n.nodes {
		if !nd.alive || nd.searchAt < 0 {
			continue
		}
		if age := time.Duration(n.now - nd.searchAt); age > 10*time.Second {
			openStart = append(openStart, float64(age)/1e6)
		}
		if nd.warmAt >= 0 {
			if age := time.Duration(n.now - nd.warmAt); age > 10*time.Second {
				openWarm = append(openWarm, float64(age)/1e6)
			}
		}
	}
	rtt := float64(n.rtt) / 1e6
	r.TTM = percentilesOf(toF64(n.ttm), openStart, rtt)
	r.TTMWarm = percentilesOf(toF64(n.ttmWarm), openWarm, rtt)

	var online float64
	perNode := make([]float64, 0, len(n.nodes))
	for _, nd := range n.nodes {
		t := float64(nd.online(n.now)) / 1e9
		online += t
		if t > 0 && !n.cfg.Baseline {
			perNode = append(perNode, (nd.bytes+n.topicBytes(nd))/t)
		}
	}
	if online > 0 {
		r.PresenceBytes = n.presBytes / online
	}
	r.PresenceBytesP99 = r.PresenceBytes
	if len(perNode) > 0 {
		slices.Sort(perNode)
		r.PresenceBytesP99 = perNode[min(len(perNode)-1, int(0.99*float64(len(perNode))))]
	}
	for _, v := range n.errs {
		if v.Kind == "safety" {
			r.DoubleMatches++
		} else {
			r.Stuck++
		}
		r.Violations = append(r.Violations, v.Error())
	}
	if n.stats.Violations > len(n.errs) { // only the first 100 are kept
		r.Stuck += n.stats.Violations - len(n.errs)
	}
	if n.cfg.Sharded && !n.cfg.Baseline {
		r.Levels = map[int]int{}
		for i, nd := range n.nodes {
			if nd.alive {
				r.Levels[n.Level(i)]++
			}
		}
	}
	// Chi-square needs about five expected calls per pair to mean anything.
	if m := len(n.nodes) * (len(n.nodes) - 1) / 2; n.pairs != nil && n.stats.Crashes == 0 && n.stats.Calls >= 5*m {
		if _, _, p := PairsChiSquare(n.pairs, len(n.nodes)); !math.IsNaN(p) {
			r.FairnessP = &p
		}
	}
	return r
}

func toF64(xs []float32) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

func percentilesOf(done, open []float64, rtt float64) Percentiles {
	p := Percentiles{Samples: len(done), Open: len(open), rttMilliseconds: rtt}
	type sample struct {
		v    float64
		open bool
	}
	all := make([]sample, 0, len(done)+len(open))
	for _, v := range done {
		all = append(all, sample{v, false})
	}
	for _, v := range open {
		all = append(all, sample{v, true})
	}
	if len(all) == 0 {
		return p
	}
	slices.SortFunc(all, func(a, b sample) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	firstOpen := len(all)
	for i, s := range all {
		if s.open {
			firstOpen = i
			break
		}
	}
	at := func(q float64) (float64, bool) {
		k := int(math.Ceil(q*float64(len(all)))) - 1
		k = max(0, min(k, len(all)-1))
		return all[k].v, k >= firstOpen
	}
	p.P50, p.Over50 = at(0.50)
	p.P95, p.Over95 = at(0.95)
	p.P99, p.Over99 = at(0.99)
	if rtt > 0 {
		p.RTTs50, p.RTTs95, p.RTTs99 = p.P50/rtt, p.P95/rtt, p.P99/rtt
	}
	return p
}

// Format prints a percentile triple: "p50/p95/p99" with ">" on lower bounds.
func (p Percentiles) Format(rtts bool) string {
	f := func(v float64, over bool) string {
		s := ""
		if over {
			s = ">"
		}
		if rtts {
			if p.rttMilliseconds <= 0 {
				return "-"
			}
			return s + fmt.Sprintf("%.1f", v/p.rttMilliseconds)
		}
		return s + fmt.Sprintf("%.0f", v)
	}
	if p.Samples+p.Open == 0 {
		return "-"
	}
	return f(p.P50, p.Over50) + "/" + f(p.P95, p.Over95) + "/" + f(p.P99, p.Over99)
}
