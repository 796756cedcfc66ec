package harness

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"serendip/node"
)

// Margins of the stuck rules (see the package doc).
const (
	// setupMargin is added to the matcher's SetupTimeout: a node matched
	// without a call for longer is stuck.
	setupMargin = 5 * time.Second
	// searchStuck: a node searching this long while enough others searched
	// the whole time is stuck.
	searchStuck = 15 * time.Second
	// idleStuck: a bot idle this long is stuck (bots always search).
	idleStuck = 15 * time.Second
	// harvestEvery is how often every node's call history is read while the
	// run goes on, well within the 100 calls a node keeps.
	harvestEvery = 20 * time.Second
	// closeTimeout bounds a node's Close at the end of a run.
	closeTimeout = 20 * time.Second
)

// tracked is one launched node and everything the harness learnt about it.
type tracked struct {
	idx      int
	m        member
	id       string
	launched time.Time // when its launch began
	up       time.Time // when it answered first
	bot      bool      // searches on its own (node Auto)

	// Guarded by run.mu.
	killed   time.Time
	killedAs string
	gone     bool // killed or closed: no longer sampled
	last     node.State
	sampled  bool
	key      string    // state and match id of the last sample
	since    time.Time // when key was first seen
	search   time.Time // first sample of the current searching stretch
	inCall   bool      // the current match was seen in call
	firstIn  time.Time // first sample in call
	lonely   bool      // ever sampled lonely
	stuck    string
	records  map[string]node.CallRecord // by match id
	metrics  node.Metrics
	hasMtr   bool
	final    node.State // at the end (or the kill)
	hasFinal bool
	usage    procUsage
	hasUsage bool
}

// run is one harness run.
type run struct {
	cfg    Config
	l      launcher
	log    *slog.Logger
	rng    *rand.Rand // drivers only (one goroutine)
	setup  time.Duration
	recent int

	start time.Time // when the scenario began (relays up)
	end   time.Time

	baseRSS  int64
	baseHeap uint64
	baseCPU  procUsage
	// schedBase is readSched before the run (schedWait).
	schedBase *metrics.Float64Histogram
	baseGor   int

	mu       sync.Mutex
	nodes    []*tracked
	matches  map[string]map[string]string // match id → node → partner
	doubles  map[string]string            // match id → what disagreed
	timeline []Sample
	traffic  []trafficSample
	lastTL   time.Time
	// lastCPU is this process's CPU time at lastSample (in process).
	lastCPU    time.Duration
	lastSample time.Time
	kills      map[string]int
	storms     []Storm
	lonely     *LonelyResult
	idle       *IdleMemory
	coldAt     time.Time
	stuck      []StuckNode
	failLive   int
	progress   *progress
	self       selfEnd
	chat       chatStats
	unclosed   []int // nodes whose Close did not return
	// In process: peak RSS and open files as sampled, and the files limit.
	hwm       int64
	loadStart float64
	// signMicros and loopbackMicros are the host's speed before the run.
	signMicros, loopbackMicros float64
	maxFiles                   int
	fileLimit                  uint64
	lastChat                   time.Time
	chatBusy                   bool
	wg                         sync.WaitGroup // chat rounds
}

// Run starts the relays and nodes, drives them through the scenario for
// cfg.Duration and returns the report. The error is ErrInvariant (with the
// report) when the run finished but broke an invariant, or another error
// when it could not run at all.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Seed == 0 {
		var b [8]byte
		_, _ = crand.Read(b[:])
		cfg.Seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	if cfg.Network == "" {
		cfg.Network = fmt.Sprintf("harness-%d-%d", cfg.Seed, time.Now().UnixNano())
	}
	if cfg.ShardTarget == 0 {
		cfg.ShardTarget = DefaultShardTarget(cfg.Nodes)
	}
	if cfg.Procs {
		p, err := newProcs(cfg)
		if err != nil {
			return nil, err
		}
		return runWith(ctx, cfg, p)
	}
	// Every connection between two nodes here holds a descriptor at each
	// end: allow about fdsPerNode per node.
	want := uint64(cfg.Nodes+cfg.Relays)*fdsPerNode + 1024
	fdLimit, err := raiseFileLimit(want)
	if fdLimit < want {
		cfg.Logger.Warn("open file limit below what the run may want", "limit", fdLimit, "want", want, "err", err)
	}
	return runWith(ctx, cfg, newInproc(cfg, fdLimit))
}

// fdsPerNode is how many descriptors an in-process node may need: one per
// libp2p connection (about 40 at 200 nodes), its call's UDP sockets, and
// room.
const fdsPerNode = 200

// runWith runs with the given launcher; cfg is valid and complete.
func runWith(ctx context.Context, cfg Config, l launcher) (*Report, error) {
	lc := node.LocalConfig()
	r := &run{
		cfg: cfg, log: cfg.Logger, l: l,
		rng:     rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		setup:   lc.Matcher.SetupTimeout,
		recent:  lc.Matcher.RecentPartners,
		matches: map[string]map[string]string{},
		doubles: map[string]string{},
		kills:   map[string]int{},
	}
	if cfg.Progress != nil {
		r.progress = &progress{w: cfg.Progress, tty: cfg.ProgressTTY}
	}
	r.baseline()
	if err := r.l.startRelays(ctx, cfg.Relays); err != nil {
		r.l.close()
		return nil, err
	}
	if !cfg.Procs {
		// The nodes' memory is what is added after the relays.
		r.baseRSS, _ = r.l.rss()
	}
	r.start = time.Now()
	r.end = r.start.Add(cfg.Duration)

	runCtx, cancel := context.WithDeadline(ctx, r.end)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.sampleLoop(runCtx)
	}()
	driveErr := r.drive(runCtx)
	if driveErr != nil {
		cancel() // a scenario that cannot go on ends the run
	}
	<-runCtx.Done()
	cancel()
	wg.Wait()
	r.wg.Wait()
	if ctx.Err() != nil && driveErr == nil {
		driveErr = ctx.Err()
	}
	if now := time.Now(); now.Before(r.end) {
		r.end = now
	}
	if r.progress != nil {
		r.progress.done()
	}

	r.collect(context.Background())
	r.shutdown()
	rep := r.report()
	if err := r.l.close(); err != nil {
		r.log.Debug("launcher close", "err", err)
	}
	if driveErr != nil && !errors.Is(driveErr, context.DeadlineExceeded) {
		return rep, driveErr
	}
	if len(rep.Violations) > 0 {
		return rep, fmt.Errorf("%w: %s", ErrInvariant, rep.Violations[0])
	}
	return rep, nil
}

func (r *run) baseline() {
	r.loadStart = loadAverage()
	r.signMicros, r.loopbackMicros = signMicros(), loopbackMicros()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.baseHeap = ms.HeapAlloc
	r.baseCPU, _ = selfUsage()
	r.schedBase = readSched()
	r.baseGor = runtime.NumGoroutine()
}

// launch starts one node and tracks it.
func (r *run) launch(ctx context.Context, bot bool, callTime time.Duration, seed uint64, at time.Time) (*tracked, error) {
	r.mu.Lock()
	t := &tracked{idx: len(r.nodes), bot: bot, launched: at, records: map[string]node.CallRecord{}}
	r.nodes = append(r.nodes, t)
	r.mu.Unlock()
	m, err := r.l.launch(ctx, nodeSpec{index: t.idx, auto: bot, callTime: callTime, seed: seed})
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		t.gone = true
		return nil, err
	}
	t.m, t.id, t.up = m, m.PeerID(), time.Now()
	return t, nil
}

// launchMany starts n nodes, at most par at a time, spread evenly over
// Config.Ramp if set; par <= 0 starts them all at the same moment.
func (r *run) launchMany(ctx context.Context, n, par int, bot bool, callTime time.Duration) error {
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = r.rng.Uint64()
	}
	ramp := r.cfg.Ramp
	if par <= 0 {
		par, ramp = n, 0 // everyone at the same moment (cold start)
	}
	sem := make(chan struct{}, par)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	at := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			if ramp > 0 {
				select {
				case <-time.After(time.Until(at.Add(ramp * time.Duration(i) / time.Duration(n)))):
				case <-ctx.Done():
					return
				}
			}
			sem <- struct{}{}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				return
			}
			launched := at
			if par < n {
				launched = time.Now()
			}
			if _, err := r.launch(ctx, bot, callTime, seeds[i], launched); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	at = time.Now()
	close(gate)
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d nodes not launched, first: %w", len(errs), n, errs[0])
	}
	return ctx.Err()
}

// alive returns the nodes still running.
func (r *run) alive() []*tracked {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*tracked
	for _, t := range r.nodes {
		if t.m != nil && !t.gone {
			out = append(out, t)
		}
	}
	return out
}

// sampleLoop reads every node's state each SampleInterval, and every
// node's history each harvestEvery.
func (r *run) sampleLoop(ctx context.Context) {
	tick := time.NewTicker(r.cfg.SampleInterval)
	defer tick.Stop()
	lastHarvest := time.Now()
	for {
		r.sample(ctx)
		if time.Since(lastHarvest) >= harvestEvery {
			r.harvest(ctx)
			lastHarvest = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// forEach runs f on every node with a few at a time.
func forEach(nodes []*tracked, par int, f func(*tracked)) {
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for _, t := range nodes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(t)
		}()
	}
	wg.Wait()
}

func (r *run) par() int {
	if r.cfg.Procs {
		return 16
	}
	return 4 * runtime.GOMAXPROCS(0)
}

func (r *run) sample(ctx context.Context) {
	nodes := r.alive()
	states := make([]node.State, len(nodes))
	oks := make([]bool, len(nodes))
	idx := map[*tracked]int{}
	for i, t := range nodes {
		idx[t] = i
	}
	forEach(nodes, r.par(), func(t *tracked) {
		st, err := t.m.State(ctx)
		if err == nil {
			states[idx[t]], oks[idx[t]] = st, true
		}
	})
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Sample{T: now.Sub(r.start).Seconds(), Up: len(nodes)}
	for i, t := range nodes {
		if !oks[i] || t.gone {
			continue
		}
		r.observe(t, states[i], now)
	}
	calls := 0
	for _, t := range r.nodes {
		calls += t.last.Calls
		if t.gone || !t.sampled {
			continue
		}
		switch t.last.State {
		case "searching":
			s.Searching++
		case "matched":
			s.Matched++
		case "in_call":
			s.InCall++
		default:
			s.Idle++
		}
	}
	s.Calls = calls / 2
	s.Failed = r.failLive
	r.checkStuck(now)
	s.Stuck = len(r.stuck)
	s.Double = len(r.doubles)
	if !r.cfg.Procs {
		if u, ok := selfUsage(); ok {
			if !r.lastSample.IsZero() && now.After(r.lastSample) {
				share := float64(u.CPU-r.lastCPU) / float64(now.Sub(r.lastSample)) / float64(runtime.NumCPU())
				s.CPU = math.Round(share*100) / 100
			}
			r.lastCPU, r.lastSample = u.CPU, now
		}
	}
	r.timeline = append(r.timeline, s)
	if now.Sub(r.lastTL) >= min(max(r.cfg.Duration/40, 2*time.Second), 10*time.Second) {
		r.lastTL = now
		if tb, ok := r.l.traffic(); ok {
			r.traffic = append(r.traffic, trafficSample{t: s.T, up: s.Up, bytes: tb})
		}
		if !r.cfg.Procs {
			if st, err := readProcStatus("self"); err == nil {
				r.hwm = max(r.hwm, st.hwm)
			}
			if n, limit, ok := openFiles(); ok {
				r.maxFiles, r.fileLimit = max(r.maxFiles, n), limit
			}
		}
	}
	if r.progress != nil {
		r.progress.show(s, r.cfg.Nodes)
	}
	if r.cfg.Media == MediaData && now.Sub(r.lastChat) >= time.Second && !r.chatBusy && !r.chat.unsupported {
		r.lastChat, r.chatBusy = now, true
		var talkers []*tracked
		for _, t := range nodes {
			if !t.gone && t.last.State == "in_call" {
				talkers = append(talkers, t)
			}
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.chatRound(ctx, talkers)
		}()
	}
}

// chatStats counts the chat lines sent in MediaData runs.
type chatStats struct {
	sent, failed int
	unsupported  bool
}

// chatRound sends one chat line from every node given.
func (r *run) chatRound(ctx context.Context, nodes []*tracked) {
	var sent, failed int
	var mu sync.Mutex
	unsupported := false
	forEach(nodes, r.par(), func(t *tracked) {
		err := t.m.Chat(ctx, fmt.Sprintf("hello from node %d", t.idx))
		mu.Lock()
		defer mu.Unlock()
		switch {
		case errors.Is(err, errNoChat):
			unsupported = true
		case err != nil:
			failed++ // the call may have just ended
		default:
			sent++
		}
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.chat.sent += sent
	r.chat.failed += failed
	r.chat.unsupported = r.chat.unsupported || unsupported
	r.chatBusy = false
}

// observe takes in one sampled state. Under r.mu.
func (r *run) observe(t *tracked, st node.State, now time.Time) {
	key := st.State + "|" + st.MatchID
	if !t.sampled || key != t.key {
		prevMatch := t.last.MatchID
		if t.sampled && prevMatch != "" && prevMatch != st.MatchID && !t.inCall {
			r.failLive++ // a match that ended unseen in call
		}
		if st.MatchID != prevMatch {
			t.inCall = false
		}
		t.key, t.since = key, now
	}
	t.last, t.sampled = st, true
	switch st.State {
	case "searching":
		if t.search.IsZero() {
			t.search = now
		}
	default:
		t.search = time.Time{}
	}
	if st.State == "in_call" {
		t.inCall = true
		if t.firstIn.IsZero() {
			t.firstIn = now
		}
	}
	if st.Lonely {
		t.lonely = true
	}
	if st.MatchID != "" && st.Partner != "" {
		r.assert(st.MatchID, t.id, st.Partner)
	}
}

// assert records that node says it is (or was) matched to partner under
// match id m, and notes a double match the moment assertions disagree: one
// node with two partners under m, a partner that names someone else under
// m, or a third node under m. Under r.mu.
func (r *run) assert(m, nodeID, partner string) {
	as := r.matches[m]
	if as == nil {
		as = map[string]string{}
		r.matches[m] = as
	}
	if prev, ok := as[nodeID]; ok && prev != partner {
		r.double(m, fmt.Sprintf("%s named partners %s and %s", short(nodeID), short(prev), short(partner)))
		return
	}
	as[nodeID] = partner
	if back, ok := as[partner]; ok && back != nodeID {
		r.double(m, fmt.Sprintf("%s names %s, who names %s", short(nodeID), short(partner), short(back)))
	}
	for other := range as {
		if other != nodeID && other != partner {
			r.double(m, fmt.Sprintf("%s, %s and %s all claim it", short(nodeID), short(partner), short(other)))
			return
		}
	}
}

func (r *run) double(m, why string) {
	if _, ok := r.doubles[m]; !ok {
		r.doubles[m] = why
		r.log.Warn("double match", "match", m, "why", why)
	}
}

// short abbreviates a peer id for messages.
func short(id string) string {
	if len(id) > 12 {
		return "…" + id[len(id)-8:]
	}
	return id
}

// checkStuck applies the stuck rules to the latest samples. Under r.mu.
func (r *run) checkStuck(now time.Time) {
	// Nodes that have been searching for searchStuck: if more of them than
	// the recent-partner rule can keep apart searched together for that
	// long, none of them should have been.
	long := 0
	for _, t := range r.nodes {
		if !t.gone && t.sampled && t.last.State == "searching" && now.Sub(t.search) > searchStuck {
			long++
		}
	}
	for _, t := range r.nodes {
		if t.gone || !t.sampled || t.stuck != "" {
			continue
		}
		var why string
		d := now.Sub(t.since)
		switch t.last.State {
		case "matched":
			if d > r.setup+setupMargin {
				why = fmt.Sprintf("matched without a call for %.1fs", d.Seconds())
			}
		case "searching":
			d = now.Sub(t.search)
			if d > searchStuck && long-1 > r.recent {
				why = fmt.Sprintf("searching for %.1fs while %d others searched for %v or more", d.Seconds(), long-1, searchStuck)
			}
		case "idle":
			if t.bot && d > idleStuck {
				why = fmt.Sprintf("a bot idle for %.1fs", d.Seconds())
			}
		}
		if why != "" {
			t.stuck = why
			r.stuck = append(r.stuck, StuckNode{Node: t.idx, Peer: t.id, State: t.last.State, Why: why, AtSeconds: round1(now.Sub(r.start).Seconds())})
			r.log.Warn("stuck node", "node", t.idx, "why", why)
		}
	}
}

// harvest merges every running node's history into what the harness
// keeps, so that nothing is lost to a node's bounded history.
func (r *run) harvest(ctx context.Context) {
	forEach(r.alive(), r.par(), func(t *tracked) { r.harvestOne(ctx, t) })
}

func (r *run) harvestOne(ctx context.Context, t *tracked) bool {
	h, err := t.m.History(ctx)
	if err != nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range h {
		t.records[rec.MatchID] = rec
		r.assert(rec.MatchID, t.id, rec.Partner)
	}
	return true
}

// finish reads what a node knows before it goes: its state, history and
// counters.
func (r *run) finish(ctx context.Context, t *tracked) {
	st, err := t.m.State(ctx)
	r.harvestOne(ctx, t)
	mt, ok := t.m.Metrics(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		t.final, t.hasFinal = st, true
		if st.MatchID != "" && st.Partner != "" {
			r.assert(st.MatchID, t.id, st.Partner)
		}
	}
	t.metrics, t.hasMtr = mt, ok
}

// kill ends t abruptly, after reading what it knows.
func (r *run) kill(ctx context.Context, t *tracked) string {
	r.finish(ctx, t)
	r.mu.Lock()
	t.gone = true
	state := t.final.State
	if !t.hasFinal {
		state = "unknown"
	}
	t.killed, t.killedAs = time.Now(), state
	r.kills[state]++
	r.mu.Unlock()
	if err := t.m.Kill(); err != nil {
		r.log.Debug("kill", "node", t.idx, "err", err)
	}
	if u, ok := t.m.Usage(); ok {
		r.mu.Lock()
		t.usage, t.hasUsage = u, true
		r.mu.Unlock()
	}
	return state
}

// collect reads every running node's final state, history and counters.
func (r *run) collect(ctx context.Context) {
	forEach(r.alive(), r.par(), func(t *tracked) { r.finish(ctx, t) })
}

// shutdown closes every node, then reads the children's usage.
func (r *run) shutdown() {
	nodes := r.alive()
	r.mu.Lock()
	for _, t := range nodes {
		t.gone = true
	}
	r.mu.Unlock()
	r.measureSelf()
	forEach(nodes, max(r.par(), 32), func(t *tracked) {
		// A node that does not close in time is left behind, counted.
		done := make(chan error, 1)
		go func() { done <- t.m.Close() }()
		select {
		case err := <-done:
			if err != nil {
				r.log.Debug("close", "node", t.idx, "err", err)
			}
		case <-time.After(closeTimeout):
			r.log.Warn("node did not close", "node", t.idx, "after", closeTimeout)
			r.mu.Lock()
			r.unclosed = append(r.unclosed, t.idx)
			r.mu.Unlock()
			return
		}
		if u, ok := t.m.Usage(); ok {
			r.mu.Lock()
			t.usage, t.hasUsage = u, true
			r.mu.Unlock()
		}
	})
}

// selfEnd is the process's usage when the nodes were still up.
type selfEnd struct {
	cpu        procUsage
	hwm        int64
	have       bool
	goroutines int
	sched      *metrics.Float64Histogram // readSched
}

func (r *run) measureSelf() {
	u, ok := selfUsage()
	st, err := readProcStatus("self")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.self = selfEnd{cpu: u, have: ok, goroutines: runtime.NumGoroutine(), sched: readSched()}
	if err == nil {
		r.self.hwm = st.hwm
	}
}

// measureIdle measures the memory the nodes hold, all up and idle: the
// heap after a collection and the resident set after returning free memory
// to the system, less what the process held before the first node.
func (r *run) measureIdle(n int) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	im := &IdleMemory{Nodes: n, RSSBytesPerNode: -1}
	if rss, ok := r.l.rss(); ok {
		im.RSSBytesPerNode = (rss - r.baseRSS) / int64(max(n, 1))
	}
	if !r.cfg.Procs {
		im.HeapBytesPerNode = int64(ms.HeapAlloc-min(ms.HeapAlloc, r.baseHeap)) / int64(max(n, 1))
		im.GoroutinesPerNode = float64(runtime.NumGoroutine()-r.baseGor) / float64(max(n, 1))
	}
	r.mu.Lock()
	r.idle = im
	r.mu.Unlock()
}

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }
