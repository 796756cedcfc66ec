package harness

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"serendip/node"
)

// Scenario names a way of driving the nodes.
type Scenario string

// The scenarios.
const (
	// Steady: every node is a bot that calls for about CallTime (see
	// CallSpread) and moves on.
	Steady Scenario = "steady"
	// ColdStart: every node is launched at the same moment, as bots.
	ColdStart Scenario = "cold-start"
	// NextStorm: bots that never hang up on their own; whenever the calls
	// have settled, every node presses Next at the same moment.
	NextStorm Scenario = "next-storm"
	// Churn: bots, with nodes killed (no bye) and replaced at ChurnRate,
	// the victims chosen in turn among searching, matched (claim accepted,
	// call being set up) and in-call nodes.
	Churn Scenario = "churn"
	// Lonely: one node searches alone, then a second joins.
	Lonely Scenario = "lonely"
	// Idle: the nodes join the network and never search; measures the
	// memory and background traffic of a node with no call.
	Idle Scenario = "idle"
)

// Scenarios lists every scenario, in the order the help text gives them.
var Scenarios = []Scenario{Steady, ColdStart, NextStorm, Churn, Lonely, Idle}

// Media says what the nodes send in their calls.
type Media string

// The media modes.
const (
	// MediaNone: no tracks (the nodes are text bots, node.Config.TextOnly);
	// the session still negotiates and connects ICE, DTLS and SCTP (the
	// chat data channel).
	MediaNone Media = "none"
	// MediaData: like MediaNone, and every node in a call sends a chat line
	// a second over the data channel, where the node can (node.Node's
	// SendChat in process, POST /api/chat in a child).
	MediaData Media = "data"
	// MediaFiles: the VP8 and Opus test clips, looped, both ways.
	MediaFiles Media = "files"
)

// Config configures a run.
type Config struct {
	Nodes    int
	Relays   int
	Duration time.Duration
	Scenario Scenario
	Media    Media
	// Procs runs every relay and node as a child process (Binary, the
	// serendip command) instead of all of them in this process.
	Procs  bool
	Binary string
	// Seed seeds the harness's choices (launch order, churn victims) and,
	// in process, every node's matcher.
	Seed uint64
	// CallTime is how long a bot stays in a call (steady, cold-start,
	// churn, lonely): with CallSpread a length in [CallTime/2,
	// 3·CallTime/2) for each call (node.Config.CallTimeSpread), as in the
	// simulator (people's calls vary, and bots that all hang up after
	// exactly CallTime echo any burst of calls that started together);
	// otherwise exactly CallTime.
	CallTime   time.Duration
	CallSpread bool
	// ShardTarget is the nodes' presence shard target, the presence
	// messages a shard should carry per announce interval
	// (node.Config.ShardTarget); zero takes DefaultShardTarget(Nodes). A
	// node hears about that many per interval whatever the network's
	// size, so it sets what presence costs each node.
	ShardTarget int
	// Ramp spreads the launch of the nodes evenly over this long (every
	// scenario but cold-start and lonely), as people arrive over time;
	// zero launches them as fast as they start, a few at a time.
	Ramp time.Duration
	// ChurnRate is how many nodes churn kills (and replaces) per second;
	// zero means Nodes/20 per second.
	ChurnRate float64
	// VideoFile and AudioFile are the clips for MediaFiles. The default
	// microphone sends 60-ms Opus packets, a third of a browser's packets:
	// every packet costs the machine the same whatever it holds (see
	// testdata/README.md).
	VideoFile, AudioFile string
	// SampleInterval is how often every node's state is read.
	SampleInterval time.Duration
	// Progress, if set, receives the live progress line; on a terminal
	// (ProgressTTY) one line rewritten in place, otherwise a line every
	// few seconds.
	Progress    io.Writer
	ProgressTTY bool
	// Logger receives the harness's own log and, at Debug, the nodes'.
	Logger *slog.Logger
	// NodeLogger, if set, receives every in-process node's log.
	NodeLogger *slog.Logger
	// Network is the Serendip network name; empty picks a fresh one, so
	// that runs never meet each other.
	Network string
	// LogDir, in Procs mode, keeps each child's stderr; empty uses a
	// temporary directory removed at the end.
	LogDir string
}

// DefaultShardTarget is the presence shard target a run of n nodes gives
// them: node.LocalConfig's (24) up to 200 nodes; above, smaller, so that
// what all the nodes on this machine spend on presence (each hears about
// the target per announce interval) stays about what 200 nodes spend:
// 4800/n, at least 4 (smaller shards leave searches lonely, and lonely
// searches climb to parent shards). At 200 nodes a smaller target
// lengthens the wait for the next newcomer (8: time to match p99 2.3 s
// against 1.2-1.6 s); at 400 nodes, where both cores are nearly full, 12
// did better than 24 on every count (3,660 calls against 3,128 in 90 s,
// time to match p50 286 against 542 ms, p99 2.7 against 3.9 s, 150
// against 163 s of CPU); at 1,000 nodes, 4 did better than 8 in two pairs
// of runs (2,117 and 1,456 calls against 1,555 and 1,052 in 120 s; 0 and
// 12 nodes without a call against 10 and 86; a third run with 4, 1,324
// calls and 43), though as many nodes were stuck.
func DefaultShardTarget(n int) int {
	t := node.LocalConfig().ShardTarget
	if n <= 200 {
		return t
	}
	return max(4, t*200/n)
}

// DefaultConfig is a small steady run with the test clips.
func DefaultConfig() Config {
	return Config{
		Nodes:          12,
		Relays:         1,
		Duration:       30 * time.Second,
		Scenario:       Steady,
		Media:          MediaFiles,
		Seed:           1,
		CallTime:       3 * time.Second,
		CallSpread:     true,
		VideoFile:      "testdata/clip.ivf",
		AudioFile:      "testdata/clip-60ms.ogg",
		SampleInterval: 250 * time.Millisecond,
	}
}

// Validate reports the first bad setting.
func (c Config) Validate() error {
	switch {
	case !slices.Contains(Scenarios, c.Scenario):
		return fmt.Errorf("%w: unknown scenario %q (want one of %v)", ErrConfig, c.Scenario, Scenarios)
	case c.Media != MediaNone && c.Media != MediaData && c.Media != MediaFiles:
		return fmt.Errorf("%w: unknown media %q (want none, data or files)", ErrConfig, c.Media)
	case c.Nodes < 1:
		return fmt.Errorf("%w: need at least one node, got %d", ErrConfig, c.Nodes)
	case c.Scenario != Lonely && c.Scenario != Idle && c.Nodes < 2:
		return fmt.Errorf("%w: scenario %s needs at least two nodes", ErrConfig, c.Scenario)
	case c.Relays < 1:
		return fmt.Errorf("%w: need at least one relay, got %d", ErrConfig, c.Relays)
	case c.Duration <= 0:
		return fmt.Errorf("%w: duration must be positive, got %v", ErrConfig, c.Duration)
	case c.CallTime <= 0:
		return fmt.Errorf("%w: call time must be positive, got %v", ErrConfig, c.CallTime)
	case c.ShardTarget < 0 || c.ShardTarget == 1:
		return fmt.Errorf("%w: shard target must be 0 (DefaultShardTarget) or at least 2, got %d", ErrConfig, c.ShardTarget)
	case c.Ramp < 0:
		return fmt.Errorf("%w: ramp must not be negative, got %v", ErrConfig, c.Ramp)
	case c.ChurnRate < 0:
		return fmt.Errorf("%w: churn rate must not be negative, got %v", ErrConfig, c.ChurnRate)
	case c.SampleInterval <= 0:
		return fmt.Errorf("%w: sample interval must be positive, got %v", ErrConfig, c.SampleInterval)
	case c.Media == MediaFiles && (c.VideoFile == "" || c.AudioFile == ""):
		return fmt.Errorf("%w: media files needs a video and an audio file", ErrConfig)
	}
	return nil
}

// churnRate is ChurnRate with its default.
func (c Config) churnRate() float64 {
	if c.ChurnRate > 0 {
		return c.ChurnRate
	}
	return max(float64(c.Nodes)/20, 0.2)
}
