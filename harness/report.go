package harness

import (
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"serendip/node"
)

// Report is what a run measured. Its JSON names are stable, so that runs
// can be compared.
type Report struct {
	Scenario  Scenario  `json:"scenario"`
	Mode      string    `json:"mode"` // "in-process" or "processes"
	Media     Media     `json:"media"`
	Nodes     int       `json:"nodes"`
	Relays    int       `json:"relays"`
	Seed      uint64    `json:"seed"`
	StartedAt time.Time `json:"started_at"`
	// DurationSeconds is how long the scenario ran; CallSeconds how long
	// the bots stayed in a call (the mean, if CallSpread: each call drawn
	// from half to one and a half times it).
	DurationSeconds float64 `json:"duration_seconds"`
	CallSeconds     float64 `json:"call_seconds"`
	CallSpread      bool    `json:"call_spread"`
	// ShardTarget is the nodes' presence shard target (Config.ShardTarget,
	// or DefaultShardTarget).
	ShardTarget int     `json:"shard_target,omitempty"`
	Machine     Machine `json:"machine"`
	// NodesLaunched counts every node started, replacements included.
	NodesLaunched int `json:"nodes_launched"`
	// Kills counts churn's kills by the victim's state.
	Kills map[string]int `json:"kills,omitempty"`

	// CallsCompleted counts matches whose media connected; CallsFailed
	// those that never did, by the reason their node gave (a side's own
	// reason rather than "partner: ..." where both are known).
	CallsCompleted      int            `json:"calls_completed"`
	CallsFailed         int            `json:"calls_failed"`
	CallsFailedByReason map[string]int `json:"calls_failed_by_reason"`
	// CallsInProgress were matched or in a call when the run ended.
	CallsInProgress int `json:"calls_in_progress"`
	// CallsWithoutMedia: with media files, connected calls of at least a
	// second, neither side killed, that received no video frame or no
	// audio packet on one side. Must be 0.
	CallsWithoutMedia int `json:"calls_without_media"`
	// DoubleMatches counts match ids whose sides disagree about who is
	// matched with whom. Must be 0.
	DoubleMatches int `json:"double_matches"`
	// StuckNodes counts nodes that broke a stuck rule. Must be 0.
	StuckNodes int `json:"stuck_nodes"`
	// NodesNotClosed counts nodes whose Close had not returned 20 s after
	// the run (in process: a goroutine of the node is stuck).
	NodesNotClosed int `json:"nodes_not_closed"`
	// SlowLoopSteps counts steps of the nodes' loops over 100 ms
	// (node.Metrics.SlowSteps, summed): the matcher and the calls of that
	// node wait behind each. Absent where the nodes' metrics were not read.
	SlowLoopSteps *uint64 `json:"slow_loop_steps,omitempty"`
	// NodesWithoutCall counts nodes up for at least half the run, still
	// running at the end, with no completed call.
	NodesWithoutCall int `json:"nodes_without_call"`

	// TimeToMatch: from the start of a search to the match, every search
	// but a node's first (which includes joining the network).
	TimeToMatch Percentiles `json:"time_to_match_ms"`
	// TimeToFirstFrame: from the match to the partner's first video frame
	// (media files only).
	TimeToFirstFrame Percentiles `json:"time_to_first_frame_ms"`
	// Setup: from the match to connected media.
	Setup Percentiles `json:"setup_ms"`
	// TimeToFirstCall: from a node's launch (joining included) to its first
	// connected call.
	TimeToFirstCall Percentiles `json:"time_to_first_call_ms"`
	// ColdStart: how many nodes were in a call within 10 s of the common
	// launch (cold-start only).
	ColdStart *ColdStartResult `json:"cold_start,omitempty"`
	Storms    []Storm          `json:"storms,omitempty"`
	Lonely    *LonelyResult    `json:"lonely,omitempty"`

	Fairness Fairness `json:"fairness"`
	// ChatSent counts the chat lines the harness had nodes send in calls
	// (media data), or is -1 where the node offers no way to send chat.
	ChatSent int `json:"chat_sent,omitempty"`
	// PeersPerNode is how many libp2p peers each running node was
	// connected to at the end.
	PeersPerNode Percentiles `json:"peers_per_node"`
	// ShardLevels counts the running nodes at the end by presence shard
	// level ("0" is the root); ShardTopicsPerNode is how many presence
	// topics each had joined.
	ShardLevels        map[int]int `json:"shard_levels,omitempty"`
	ShardTopicsPerNode Percentiles `json:"shard_topics_per_node"`
	// GoroutinesPerNode: in process, the goroutines at the end of the run
	// (before the nodes close) over the number of nodes.
	GoroutinesPerNode float64 `json:"goroutines_per_node,omitempty"`
	// Traffic per node per second.
	Traffic Traffic `json:"traffic"`

	// CPUSeconds is the CPU time of the whole run: in process, this
	// process (relays and harness included); with processes, the node
	// processes' (RelayCPUSeconds the relays').
	CPUSeconds        float64 `json:"cpu_seconds"`
	CPUSecondsPerNode float64 `json:"cpu_seconds_per_node"`
	// CPUShare is CPUSeconds over the machine's capacity for the run.
	CPUShare        float64 `json:"cpu_share"`
	RelayCPUSeconds float64 `json:"relay_cpu_seconds,omitempty"`
	// SchedWait (in process only): how long the goroutines of this
	// process, the nodes', waited runnable before they ran, in
	// milliseconds, from the Go runtime's sampled histogram (schedWait).
	// Every hop of a message inside a node waits this long a few times.
	SchedWait *Percentiles `json:"sched_wait_ms,omitempty"`
	// RSSBytesPerNode is peak memory per node: in process, (peak RSS − RSS
	// before the first node) / nodes; with processes, the mean of the node
	// processes' peak RSS.
	RSSBytesPerNode int64 `json:"rss_bytes_per_node"`
	PeakRSSBytes    int64 `json:"peak_rss_bytes"`
	// OpenFiles is the most file descriptors this process held (in
	// process: every connection between two nodes costs two), and
	// OpenFilesLimit its limit.
	OpenFiles      int    `json:"open_files,omitempty"`
	OpenFilesLimit uint64 `json:"open_files_limit,omitempty"`
	// IdleMemory is measured with every node up and idle (idle scenario).
	IdleMemory *IdleMemory `json:"idle_memory,omitempty"`

	Violations   []string      `json:"violations"`
	Stuck        []StuckNode   `json:"stuck,omitempty"`
	Doubles      []string      `json:"doubles,omitempty"`
	NoMedia      []string      `json:"no_media,omitempty"`
	Timeline     []Sample      `json:"timeline"`
	TrafficTimes []TrafficRate `json:"traffic_timeline,omitempty"`

	// Raw samples for the plots.
	matchMs, frameMs, firstCallMs []float64
	callEnds                      []float64 // seconds since start of each completed call's end
}

// Machine describes where the run ran.
type Machine struct {
	CPUs int    `json:"cpus"`
	OS   string `json:"os"`
	Arch string `json:"arch"`
	Go   string `json:"go"`
	// LoadStart and LoadEnd are the machine's one-minute load average as
	// the run began and ended (other work competing for the CPUs).
	LoadStart float64 `json:"load_start,omitempty"`
	LoadEnd   float64 `json:"load_end,omitempty"`
	// SignMicros is how long one Ed25519 signature took on one core just
	// before the run (signMicros): how fast the host is, so that figures
	// from different hosts, or different days, can be set side by side.
	SignMicros float64 `json:"sign_us,omitempty"`
	// LoopbackMicros is one round trip over a TCP connection on 127.0.0.1
	// just before the run (loopbackMicros): how fast the host's system
	// calls and wake-ups are, which a signature does not show.
	LoopbackMicros float64 `json:"loopback_rtt_us,omitempty"`
}

// Sample is the state of every node at one moment.
type Sample struct {
	T         float64 `json:"t"` // seconds since the start
	Up        int     `json:"up"`
	Idle      int     `json:"idle"`
	Searching int     `json:"searching"`
	Matched   int     `json:"matched"`
	InCall    int     `json:"in_call"`
	Calls     int     `json:"calls"`  // completed so far (connected calls ended)
	Failed    int     `json:"failed"` // matches that ended never seen in call
	Stuck     int     `json:"stuck"`
	Double    int     `json:"double"`
	// CPU is the share of the machine's cores this process used since the
	// sample before (in process only: the nodes, the relays and the
	// harness), 1 being all of them: where a run comes apart, it shows
	// whether the machine was full.
	CPU float64 `json:"cpu,omitempty"`
}

type trafficSample struct {
	t     float64
	up    int
	bytes classBytes
}

// TrafficRate is bytes per node per second (in plus out) by class over one
// stretch of the run.
type TrafficRate struct {
	T       float64            `json:"t"`
	PerNode map[string]float64 `json:"per_node"`
}

// Traffic is per node per second, over the nodes' lifetimes.
type Traffic struct {
	// Messages the nodes counted (node.Metrics), sent and received.
	Messages map[string]InOut `json:"messages"`
	// Bytes on the wire (libp2p bandwidth reporter, in process only) by
	// protocol class: presence (GossipSub), claim, signal, dht, other;
	// media is RTP payload received.
	Bytes map[string]InOut `json:"bytes"`
	// RelayBytes is each relay's traffic per second.
	RelayBytes *InOut `json:"relay_bytes,omitempty"`
	// Connections is how many libp2p connections the nodes opened
	// (dialled: out) and accepted (in), per node per second (in process
	// only); each costs a Noise handshake and an identify exchange.
	Connections *InOut `json:"connections,omitempty"`
	// ConnectsBy is how many connections the nodes set out to make per
	// node per second, by why (node.Metrics): "claim" (a claim to a peer
	// the node had no connection to), "rendezvous", "shard" and "sibling"
	// (peers a meet connected to).
	ConnectsBy map[string]float64 `json:"connects_by,omitempty"`
	// SharedSignatureChecks is how many signature checks the in-process
	// nodes took from each other instead of computing (see the package
	// doc); a real node computes every one.
	SharedSignatureChecks uint64 `json:"shared_signature_checks,omitempty"`
	// NodeSeconds is the sum of the nodes' lifetimes the rates divide by.
	NodeSeconds float64 `json:"node_seconds"`
}

// InOut is a rate received and sent.
type InOut struct {
	In  float64 `json:"in"`
	Out float64 `json:"out"`
}

// ColdStartResult is the cold-start figure.
type ColdStartResult struct {
	Nodes           int `json:"nodes"`
	InCallWithin10s int `json:"in_call_within_10s"`
	NeverInCall     int `json:"never_in_call"`
}

// Storm is one Next storm.
type Storm struct {
	AtSeconds    float64 `json:"at_s"`
	InCallBefore int     `json:"in_call_before"`
	Pressed      int     `json:"pressed"`
	Errors       int     `json:"errors"`
	// RecoveredMs: until every node that can be was in a call again (as
	// sampled); nil if that did not happen within 15 s.
	RecoveredMs *float64 `json:"recovered_ms"`
}

// LonelyResult is the lonely scenario's finding.
type LonelyResult struct {
	AloneSeconds     float64 `json:"alone_s"`
	LonelyWhileAlone bool    `json:"lonely_while_alone"`
	// PairedMs: from the second node's launch to both in a call.
	PairedMs *float64 `json:"paired_ms"`
	// LonelyAtEnd: nodes searching and lonely at the end (after their call,
	// each is the other's recent partner, never claimed again).
	LonelyAtEnd int `json:"lonely_at_end"`
}

// IdleMemory is the memory of idle nodes.
type IdleMemory struct {
	Nodes int `json:"nodes"`
	// RSSBytesPerNode is -1 when the resident set could not be read (the
	// process out of file descriptors, for one).
	RSSBytesPerNode   int64   `json:"rss_bytes_per_node"`
	HeapBytesPerNode  int64   `json:"heap_bytes_per_node,omitempty"`
	GoroutinesPerNode float64 `json:"goroutines_per_node,omitempty"`
}

// StuckNode is one node that broke a stuck rule.
type StuckNode struct {
	Node      int     `json:"node"`
	Peer      string  `json:"peer"`
	State     string  `json:"state"`
	Why       string  `json:"why"`
	AtSeconds float64 `json:"at_s"`
}

// OK reports whether every invariant held.
func (rep *Report) OK() bool { return len(rep.Violations) == 0 }

// mediaMin is how long a call must have had media to be expected to carry
// a frame and a packet.
const mediaMin = time.Second

// report analyses everything collected.
func (r *run) report() *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	wall := r.end.Sub(r.start)
	rep := &Report{
		Scenario: r.cfg.Scenario, Mode: r.l.mode(), Media: r.cfg.Media,
		Nodes: r.cfg.Nodes, Relays: r.cfg.Relays, Seed: r.cfg.Seed, StartedAt: r.start.UTC(),
		DurationSeconds: round1(wall.Seconds()), CallSeconds: r.cfg.CallTime.Seconds(), CallSpread: r.cfg.CallSpread,
		ShardTarget: r.cfg.ShardTarget,
		Machine: Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version(),
			LoadStart: r.loadStart, LoadEnd: loadAverage(), SignMicros: r.signMicros, LoopbackMicros: r.loopbackMicros},
		NodesLaunched:       len(r.nodes),
		CallsFailedByReason: map[string]int{},
		Storms:              r.storms,
		Lonely:              r.lonely,
		IdleMemory:          r.idle,
		Stuck:               r.stuck,
		Timeline:            r.timeline,
		Violations:          []string{},
	}
	if len(r.kills) > 0 {
		rep.Kills = maps.Clone(r.kills)
	}
	byID := map[string]*tracked{}
	for _, t := range r.nodes {
		if t.id != "" {
			byID[t.id] = t
		}
	}

	// Calls, by match id.
	type call struct {
		recs []node.CallRecord
	}
	calls := map[string]*call{}
	for _, t := range r.nodes {
		for _, rec := range t.records {
			c := calls[rec.MatchID]
			if c == nil {
				c = &call{}
				calls[rec.MatchID] = c
			}
			c.recs = append(c.recs, rec)
		}
	}
	for _, c := range calls {
		connected := false
		for _, rec := range c.recs {
			connected = connected || rec.Connected
		}
		if connected {
			rep.CallsCompleted++
			end := c.recs[0].EndedAt
			for _, rec := range c.recs[1:] {
				if rec.EndedAt.Before(end) {
					end = rec.EndedAt
				}
			}
			rep.callEnds = append(rep.callEnds, end.Sub(r.start).Seconds())
			continue
		}
		rep.CallsFailed++
		reason := c.recs[0].Reason
		for _, rec := range c.recs {
			if !strings.HasPrefix(rec.Reason, "partner: ") {
				reason = rec.Reason
			}
		}
		rep.CallsFailedByReason[reason]++
	}
	inProgress := map[string]bool{}
	for _, t := range r.nodes {
		if t.hasFinal && t.killed.IsZero() && t.final.MatchID != "" {
			if _, done := calls[t.final.MatchID]; !done {
				inProgress[t.final.MatchID] = true
			}
		}
	}
	rep.CallsInProgress = len(inProgress)

	// Per node: times, media, fairness.
	var fin []fairnessInput
	var setup []float64
	coldDeadline := r.coldAt.Add(10 * time.Second)
	cold := &ColdStartResult{}
	for _, t := range r.nodes {
		if t.m == nil {
			continue
		}
		recs := slices.SortedFunc(maps.Values(t.records), func(a, b node.CallRecord) int { return a.MatchedAt.Compare(b.MatchedAt) })
		var firstCall time.Time
		partners := map[string]int{}
		for _, rec := range recs {
			searchFrom := rec.MatchedAt.Add(-time.Duration(rec.SearchMillis) * time.Millisecond)
			// The search that began with the node includes joining (the
			// slack covers SearchMillis being truncated).
			if searchFrom.After(t.up.Add(100 * time.Millisecond)) {
				rep.matchMs = append(rep.matchMs, float64(rec.SearchMillis))
			}
			if !rec.Connected {
				continue
			}
			partners[rec.Partner]++
			connectedAt := rec.MatchedAt.Add(time.Duration(rec.SetupMillis) * time.Millisecond)
			if firstCall.IsZero() || connectedAt.Before(firstCall) {
				firstCall = connectedAt
			}
			setup = append(setup, float64(rec.SetupMillis))
			if rec.FirstFrameMillis > 0 {
				rep.frameMs = append(rep.frameMs, float64(rec.FirstFrameMillis))
			}
			if r.cfg.Media == MediaFiles {
				r.checkMedia(rep, t, rec, byID)
			}
		}
		if !t.firstIn.IsZero() && (firstCall.IsZero() || t.firstIn.Before(firstCall)) {
			firstCall = t.firstIn
		}
		if !firstCall.IsZero() {
			rep.firstCallMs = append(rep.firstCallMs, float64(firstCall.Sub(t.launched).Milliseconds()))
		}
		if r.cfg.Scenario == ColdStart {
			cold.Nodes++
			switch {
			case firstCall.IsZero():
				cold.NeverInCall++
			case !firstCall.After(coldDeadline):
				cold.InCallWithin10s++
			}
		}
		// A call still going at the end, long enough to have media.
		if r.cfg.Media == MediaFiles && t.hasFinal && t.killed.IsZero() && t.final.State == "in_call" &&
			t.final.CallSeconds >= mediaMin.Seconds() && (t.final.Media.VideoFramesReceived == 0 || t.final.Media.AudioPacketsReceived == 0) {
			rep.NoMedia = append(rep.NoMedia, fmt.Sprintf("node %d, call %s in progress for %.1fs: %d video frames, %d audio packets",
				t.idx, t.final.MatchID, t.final.CallSeconds, t.final.Media.VideoFramesReceived, t.final.Media.AudioPacketsReceived))
		}
		if t.killed.IsZero() && t.up.Before(r.start.Add(wall/2)) && len(partners) == 0 && r.cfg.Scenario != Idle &&
			!(t.hasFinal && t.final.State == "in_call") {
			rep.NodesWithoutCall++
		}
		// Candidates: every other node alive at some point of t's life.
		from, to := t.up, r.end
		if !t.killed.IsZero() {
			to = t.killed
		}
		cands := 0
		for _, o := range r.nodes {
			if o == t || o.m == nil {
				continue
			}
			oto := r.end
			if !o.killed.IsZero() {
				oto = o.killed
			}
			if o.up.Before(to) && oto.After(from) {
				cands++
			}
		}
		fin = append(fin, fairnessInput{partners: partners, candidates: cands})
	}
	if r.cfg.Scenario == ColdStart {
		rep.ColdStart = cold
	}
	if r.lonely != nil {
		for _, t := range r.nodes {
			if t.hasFinal && t.final.State == "searching" && t.final.Lonely {
				r.lonely.LonelyAtEnd++
			}
		}
	}
	var peers, topics []float64
	for _, t := range r.nodes {
		if t.hasFinal && t.killed.IsZero() {
			peers = append(peers, float64(t.final.Peers))
			if l, _, ok := strings.Cut(t.final.Shard, "."); ok {
				level, err := strconv.Atoi(l)
				if err != nil {
					continue
				}
				if rep.ShardLevels == nil {
					rep.ShardLevels = map[int]int{}
				}
				rep.ShardLevels[level]++
				topics = append(topics, float64(t.final.ShardTopics))
			}
		}
	}
	rep.PeersPerNode = percentiles(peers)
	rep.ShardTopicsPerNode = percentiles(topics)
	if !r.cfg.Procs && r.self.goroutines > 0 {
		rep.GoroutinesPerNode = math.Round(float64(r.self.goroutines-r.baseGor)/float64(max(r.cfg.Nodes, 1))*10) / 10
	}
	rep.TimeToMatch = percentiles(rep.matchMs)
	rep.TimeToFirstFrame = percentiles(rep.frameMs)
	rep.Setup = percentiles(setup)
	rep.TimeToFirstCall = percentiles(rep.firstCallMs)
	rep.Fairness = fairness(fin)

	if r.cfg.Media == MediaData {
		rep.ChatSent = r.chat.sent
		if r.chat.unsupported {
			rep.ChatSent = -1
		}
	}
	r.traffic2(rep)
	r.usage(rep, wall)

	// Invariants.
	rep.DoubleMatches = len(r.doubles)
	for _, m := range slices.Sorted(maps.Keys(r.doubles)) {
		rep.Doubles = append(rep.Doubles, m+": "+r.doubles[m])
	}
	rep.StuckNodes = len(r.stuck)
	rep.NodesNotClosed = len(r.unclosed)
	rep.CallsWithoutMedia = len(rep.NoMedia)
	if rep.DoubleMatches > 0 {
		rep.Violations = append(rep.Violations, fmt.Sprintf("%d double matches (first: %s)", rep.DoubleMatches, rep.Doubles[0]))
	}
	if rep.StuckNodes > 0 {
		s := r.stuck[0]
		rep.Violations = append(rep.Violations, fmt.Sprintf("%d stuck nodes (first: node %d %s)", rep.StuckNodes, s.Node, s.Why))
	}
	if rep.CallsWithoutMedia > 0 {
		rep.Violations = append(rep.Violations, fmt.Sprintf("%d calls without media (first: %s)", rep.CallsWithoutMedia, rep.NoMedia[0]))
	}
	if l := r.lonely; l != nil {
		if !l.LonelyWhileAlone {
			rep.Violations = append(rep.Violations, "the first node never said it was lonely while alone")
		}
		if l.PairedMs == nil {
			rep.Violations = append(rep.Violations, "the nodes never met after the second joined")
		}
	}
	return rep
}

// checkMedia flags a connected call that had media long enough to carry a
// frame and a packet and received neither on this side. Calls whose
// partner or node was killed are left out. Under r.mu.
func (r *run) checkMedia(rep *Report, t *tracked, rec node.CallRecord, byID map[string]*tracked) {
	if rec.VideoFramesReceived > 0 && rec.AudioPacketsReceived > 0 {
		return
	}
	connectedAt := rec.MatchedAt.Add(time.Duration(rec.SetupMillis) * time.Millisecond)
	if rec.EndedAt.Sub(connectedAt) < mediaMin {
		return
	}
	if p := byID[rec.Partner]; p != nil && !p.killed.IsZero() && p.killed.Before(rec.EndedAt.Add(time.Second)) {
		return
	}
	rep.NoMedia = append(rep.NoMedia, fmt.Sprintf("node %d, call %s of %.1fs (%s): %d video frames, %d audio packets",
		t.idx, rec.MatchID, rec.EndedAt.Sub(connectedAt).Seconds(), rec.Reason, rec.VideoFramesReceived, rec.AudioPacketsReceived))
}

// traffic2 fills rep.Traffic. Under r.mu.
func (r *run) traffic2(rep *Report) {
	var nodeSec float64
	var mt node.Metrics
	haveMtr := false
	var mediaIn uint64
	var framesIn, packetsIn uint64
	for _, t := range r.nodes {
		if t.m == nil {
			continue
		}
		to := r.end
		if !t.killed.IsZero() {
			to = t.killed
		}
		nodeSec += max(to.Sub(t.up).Seconds(), 0)
		if t.hasMtr {
			haveMtr = true
			mt.PresenceSent += t.metrics.PresenceSent
			mt.PresenceReceived += t.metrics.PresenceReceived
			mt.ClaimsSent += t.metrics.ClaimsSent
			mt.ClaimsReceived += t.metrics.ClaimsReceived
			mt.SignalsSent += t.metrics.SignalsSent
			mt.SignalsReceived += t.metrics.SignalsReceived
			mt.SlowSteps += t.metrics.SlowSteps
			mt.ClaimDials += t.metrics.ClaimDials
			mt.RendezvousConnects += t.metrics.RendezvousConnects
			mt.ShardConnects += t.metrics.ShardConnects
			mt.SiblingConnects += t.metrics.SiblingConnects
		}
		for _, rec := range t.records {
			mediaIn += rec.BytesReceived
			framesIn += rec.VideoFramesReceived
			packetsIn += rec.AudioPacketsReceived
		}
		if t.hasFinal && t.killed.IsZero() && t.final.MatchID != "" {
			mediaIn += t.final.Media.BytesReceived
			framesIn += t.final.Media.VideoFramesReceived
			packetsIn += t.final.Media.AudioPacketsReceived
		}
	}
	tr := Traffic{Messages: map[string]InOut{}, Bytes: map[string]InOut{}, NodeSeconds: math.Round(nodeSec)}
	if nodeSec <= 0 {
		rep.Traffic = tr
		return
	}
	rate := func(v uint64) float64 { return math.Round(float64(v)/nodeSec*100) / 100 }
	if haveMtr {
		rep.SlowLoopSteps = &mt.SlowSteps
		tr.Messages[classPresence] = InOut{In: rate(mt.PresenceReceived), Out: rate(mt.PresenceSent)}
		tr.Messages[classClaim] = InOut{In: rate(mt.ClaimsReceived), Out: rate(mt.ClaimsSent)}
		tr.Messages[classSignal] = InOut{In: rate(mt.SignalsReceived), Out: rate(mt.SignalsSent)}
		tr.ConnectsBy = map[string]float64{
			"claim":      rate(mt.ClaimDials),
			"rendezvous": rate(mt.RendezvousConnects),
			"shard":      rate(mt.ShardConnects),
			"sibling":    rate(mt.SiblingConnects),
		}
	}
	// Media messages: frames and packets received (and, symmetric, sent).
	tr.Messages["media"] = InOut{In: rate(framesIn + packetsIn), Out: rate(framesIn + packetsIn)}
	if tb, ok := r.l.traffic(); ok {
		for _, c := range classes {
			tr.Bytes[c] = InOut{In: rate(tb[c].In), Out: rate(tb[c].Out)}
		}
	}
	tr.Bytes["media"] = InOut{In: rate(mediaIn), Out: rate(mediaIn)}
	if in, out, ok := r.l.relayTraffic(); ok && r.cfg.Relays > 0 {
		sec := r.end.Sub(r.start).Seconds() * float64(r.cfg.Relays)
		tr.RelayBytes = &InOut{In: math.Round(float64(in) / sec), Out: math.Round(float64(out) / sec)}
	}
	if in, out, ok := r.l.connections(); ok {
		tr.Connections = &InOut{In: rate(in), Out: rate(out)}
	}
	tr.SharedSignatureChecks = r.l.sharedSignatureChecks()
	rep.Traffic = tr

	// Rates over time, per node alive.
	for i := 1; i < len(r.traffic); i++ {
		a, b := r.traffic[i-1], r.traffic[i]
		dt := b.t - a.t
		if dt <= 0 || b.up == 0 {
			continue
		}
		tr := TrafficRate{T: round1(b.t), PerNode: map[string]float64{}}
		for _, c := range classes {
			d := float64(b.bytes[c].In+b.bytes[c].Out) - float64(a.bytes[c].In+a.bytes[c].Out)
			tr.PerNode[c] = math.Round(max(d, 0) / dt / float64(b.up))
		}
		rep.TrafficTimes = append(rep.TrafficTimes, tr)
	}
}

// usage fills the CPU and memory figures. Under r.mu.
func (r *run) usage(rep *Report, wall time.Duration) {
	n := float64(max(r.cfg.Nodes, 1))
	if r.cfg.Procs {
		var cpu time.Duration
		var rssSum int64
		var peak int64
		cnt := 0
		for _, t := range r.nodes {
			if !t.hasUsage {
				continue
			}
			cpu += t.usage.CPU
			rssSum += t.usage.MaxRSS
			peak = max(peak, t.usage.MaxRSS)
			cnt++
		}
		rep.CPUSeconds = round1(cpu.Seconds())
		if cnt > 0 {
			rep.RSSBytesPerNode = rssSum / int64(cnt)
		}
		rep.PeakRSSBytes = peak
		if p, ok := r.l.(*procs); ok {
			rep.RelayCPUSeconds = round1(p.relayUsage().CPU.Seconds())
		}
	} else {
		if r.self.have {
			rep.CPUSeconds = round1((r.self.cpu.CPU - r.baseCPU.CPU).Seconds())
		}
		if hwm := max(r.self.hwm, r.hwm); hwm > 0 {
			rep.PeakRSSBytes = hwm
			rep.RSSBytesPerNode = max(hwm-r.baseRSS, 0) / int64(n)
		}
		rep.OpenFiles, rep.OpenFilesLimit = r.maxFiles, r.fileLimit
		rep.SchedWait = schedWait(r.schedBase, r.self.sched)
	}
	rep.CPUSecondsPerNode = math.Round(rep.CPUSeconds/n*1000) / 1000
	if s := wall.Seconds() * float64(runtime.NumCPU()); s > 0 {
		rep.CPUShare = round3(rep.CPUSeconds / s)
	}
}

// Table is the report as text: the figures, then what went wrong.
func (rep *Report) Table() string {
	var b strings.Builder
	w := func(k, format string, a ...any) { fmt.Fprintf(&b, "  %-34s "+format+"\n", append([]any{k}, a...)...) }
	pct := func(p Percentiles) string {
		if p.Count == 0 {
			return "-"
		}
		return fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s  (n=%d)", ms(p.P50), ms(p.P95), ms(p.P99), ms(p.Max), p.Count)
	}
	calls := fmt.Sprintf("calls of %gs", rep.CallSeconds)
	if rep.CallSpread {
		calls = fmt.Sprintf("calls of %g-%gs", rep.CallSeconds/2, rep.CallSeconds*3/2)
	}
	if rep.ShardTarget > 0 {
		calls += fmt.Sprintf(", shard target %d", rep.ShardTarget)
	}
	fmt.Fprintf(&b, "serendip harness: %s, %d nodes, %d relays, %s media, %s, %.0fs, %s, seed %d\n",
		rep.Scenario, rep.Nodes, rep.Relays, rep.Media, rep.Mode, rep.DurationSeconds, calls, rep.Seed)
	w("time to match", "%s", pct(rep.TimeToMatch))
	w("time to first frame (from match)", "%s", pct(rep.TimeToFirstFrame))
	w("setup (match to media)", "%s", pct(rep.Setup))
	w("launch to first call", "%s", pct(rep.TimeToFirstCall))
	if c := rep.ColdStart; c != nil {
		w("in a call within 10 s of start", "%d of %d (never: %d)", c.InCallWithin10s, c.Nodes, c.NeverInCall)
	}
	w("calls completed", "%d (in progress at the end: %d)", rep.CallsCompleted, rep.CallsInProgress)
	fails := "-"
	if len(rep.CallsFailedByReason) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(rep.CallsFailedByReason)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, rep.CallsFailedByReason[k]))
		}
		fails = strings.Join(parts, ", ")
	}
	w("calls failed", "%d (%s)", rep.CallsFailed, fails)
	w("double matches (must be 0)", "%d", rep.DoubleMatches)
	w("stuck nodes (must be 0)", "%d", rep.StuckNodes)
	if rep.Media == MediaFiles {
		w("calls without media (must be 0)", "%d", rep.CallsWithoutMedia)
	}
	w("nodes without a call", "%d", rep.NodesWithoutCall)
	if rep.SlowLoopSteps != nil {
		w("node loop steps over 100 ms", "%d", *rep.SlowLoopSteps)
	}
	if rep.NodesNotClosed > 0 {
		w("nodes that did not close", "%d (Close still blocked %v after the run)", rep.NodesNotClosed, closeTimeout)
	}
	switch {
	case rep.Media != MediaData:
	case rep.ChatSent < 0:
		w("chat lines sent", "none: the node cannot send chat")
	default:
		w("chat lines sent", "%d", rep.ChatSent)
	}
	if len(rep.Kills) > 0 {
		w("killed (by state)", "%s", kv(rep.Kills))
	}
	f := rep.Fairness
	if f.PValue != nil {
		w("partner fairness", "chi2 %.0f, dof %d, p = %.3g; repeats %.1f%% (uniform: %.1f%%)",
			f.Chi2, f.DoF, *f.PValue, f.RepeatShare*100, f.ExpectedRepeatShare*100)
	} else {
		w("partner fairness", "- (no node had a choice)")
	}
	tr := rep.Traffic
	if len(tr.Messages) > 0 || len(tr.Bytes) > 0 {
		fmt.Fprintf(&b, "  %-34s %-22s %s\n", "per node per second, in / out:", "messages", "bytes")
		for _, c := range append(slices.Clone(classes), "media") {
			m, okm := tr.Messages[c]
			v, okb := tr.Bytes[c]
			if !okm && !okb {
				continue
			}
			msgs, byts := "-", "-"
			if okm {
				msgs = fmt.Sprintf("%.1f / %.1f", m.In, m.Out)
			}
			if okb {
				byts = fmt.Sprintf("%s / %s", bytesStr(v.In), bytesStr(v.Out))
			}
			fmt.Fprintf(&b, "    %-32s %-22s %s\n", c, msgs, byts)
		}
	}
	if tr.RelayBytes != nil {
		w("bytes/relay/s (in / out)", "%s / %s", bytesStr(tr.RelayBytes.In), bytesStr(tr.RelayBytes.Out))
	}
	if c := tr.Connections; c != nil {
		w("connections/node/s (in / out)", "%.2f / %.2f", c.In, c.Out)
	}
	if b := tr.ConnectsBy; b != nil {
		w("  set out to make, by why", "claims %.2f, rendezvous %.2f, shard meets %.2f, sibling meets %.2f",
			b["claim"], b["rendezvous"], b["shard"], b["sibling"])
	}
	if n := tr.SharedSignatureChecks; n > 0 {
		w("signature checks shared", "%d (computed once for all nodes; see the harness doc)", n)
	}
	if p := rep.PeersPerNode; p.Count > 0 {
		extra := ""
		if rep.GoroutinesPerNode > 0 {
			extra = fmt.Sprintf("; %.0f goroutines per node", rep.GoroutinesPerNode)
		}
		w("libp2p peers per node", "p50 %.0f, max %.0f%s", p.P50, p.Max, extra)
	}
	if len(rep.ShardLevels) > 0 {
		var parts []string
		for _, l := range slices.Sorted(maps.Keys(rep.ShardLevels)) {
			parts = append(parts, fmt.Sprintf("%d: %d", l, rep.ShardLevels[l]))
		}
		w("presence shard level (nodes)", "%s; topics joined p50 %.0f, max %.0f", strings.Join(parts, ", "),
			rep.ShardTopicsPerNode.P50, rep.ShardTopicsPerNode.Max)
	}
	w("CPU", "%.1f s (%.3f s per node, %.0f%% of %d cores; machine load %.1f to %.1f)", rep.CPUSeconds, rep.CPUSecondsPerNode,
		rep.CPUShare*100, rep.Machine.CPUs, rep.Machine.LoadStart, rep.Machine.LoadEnd)
	if p := rep.SchedWait; p != nil {
		w("scheduling wait (goroutines)", "p50 %s  p95 %s  p99 %s  mean %s  (runnable until run; n=%d sampled)",
			msFine(p.P50), msFine(p.P95), msFine(p.P99), msFine(p.Mean), p.Count)
	}
	if rep.Machine.SignMicros > 0 {
		rtt := ""
		if rep.Machine.LoopbackMicros > 0 {
			rtt = fmt.Sprintf(", a loopback TCP round trip in %.1f µs", rep.Machine.LoopbackMicros)
		}
		w("host speed", "an Ed25519 signature in %.1f µs%s (before the run)", rep.Machine.SignMicros, rtt)
	}
	w("peak RSS per node", "%s (peak %s)", bytesStr(float64(rep.RSSBytesPerNode)), bytesStr(float64(rep.PeakRSSBytes)))
	if rep.OpenFiles > 0 {
		warn := ""
		if rep.OpenFilesLimit > 0 && uint64(rep.OpenFiles)*10 >= rep.OpenFilesLimit*9 {
			warn = " (AT THE LIMIT: connections and sockets fail)"
		}
		w("open files (peak)", "%d of %d%s", rep.OpenFiles, rep.OpenFilesLimit, warn)
	}
	if im := rep.IdleMemory; im != nil {
		extra := ""
		if im.HeapBytesPerNode > 0 {
			extra = fmt.Sprintf(", heap %s, %.0f goroutines", bytesStr(float64(im.HeapBytesPerNode)), im.GoroutinesPerNode)
		}
		rss := "unknown (could not be read)"
		if im.RSSBytesPerNode >= 0 {
			rss = bytesStr(float64(im.RSSBytesPerNode))
		}
		w("idle memory per node", "RSS %s%s", rss, extra)
	}
	if len(rep.Storms) > 0 {
		var rec []float64
		for _, s := range rep.Storms {
			if s.RecoveredMs != nil {
				rec = append(rec, *s.RecoveredMs)
			}
		}
		p := percentiles(rec)
		w("next storms", "%d, %d recovered (every node that can be back in a call): p50 %s, max %s",
			len(rep.Storms), len(rec), ms(p.P50), ms(p.Max))
	}
	if l := rep.Lonely; l != nil {
		paired := "never"
		if l.PairedMs != nil {
			paired = ms(*l.PairedMs)
		}
		w("lonely", "alone %.0fs, said lonely: %v; paired after %s; lonely at the end: %d", l.AloneSeconds, l.LonelyWhileAlone, paired, l.LonelyAtEnd)
	}
	if len(rep.Violations) == 0 {
		b.WriteString("invariants: all held\n")
	} else {
		b.WriteString("INVARIANTS BROKEN:\n")
		for _, v := range rep.Violations {
			fmt.Fprintf(&b, "  - %s\n", v)
		}
	}
	return b.String()
}

func ms(v float64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.1fs", v/1000)
	}
	return fmt.Sprintf("%.0fms", v)
}

// msFine is ms for figures that may be fractions of a millisecond.
func msFine(v float64) string {
	switch {
	case v < 1:
		return fmt.Sprintf("%.0fµs", v*1000)
	case v < 10:
		return fmt.Sprintf("%.2fms", v)
	case v < 100:
		return fmt.Sprintf("%.1fms", v)
	}
	return ms(v)
}

func bytesStr(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.2f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.2f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}

func kv(m map[string]int) string {
	keys := slices.Collect(maps.Keys(m))
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
