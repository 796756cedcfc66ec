package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/mattn/go-isatty"

	"serendip/harness"
)

// harnessGOGC is the harness's garbage collection target (GOGC) unless the
// environment sets one.
const harnessGOGC = 400

func runHarness(ctx context.Context, args []string) error {
	def := harness.DefaultConfig()
	fs := flag.NewFlagSet("harness", flag.ContinueOnError)
	nodes := fs.Int("nodes", def.Nodes, "number of nodes")
	relays := fs.Int("relays", def.Relays, "number of relays")
	duration := fs.Duration("duration", def.Duration, "how long the scenario runs")
	scenario := fs.String("scenario", string(def.Scenario), "steady, cold-start, next-storm, churn, lonely or idle")
	media := fs.String("media", string(def.Media), "what calls carry: none, data (data channel and chat) or files (the VP8/Opus clips)")
	procs := fs.Bool("procs", false, "run each relay and node as a separate process instead of all in this one")
	seed := fs.Uint64("seed", def.Seed, "seed of the harness's choices and (in process) of the matchers; 0 = random")
	callSeconds := fs.Float64("call-seconds", def.CallTime.Seconds(), "how long a bot stays in a call (the mean, with --call-spread)")
	callSpread := fs.Bool("call-spread", def.CallSpread, "draw each call's length between half and one and a half times --call-seconds (false: exactly)")
	ramp := fs.Duration("ramp", 0, "spread the nodes' launch evenly over this long (not cold-start, lonely); 0 = as fast as they start")
	churnRate := fs.Float64("churn-rate", 0, "churn: nodes killed and replaced per second (default nodes/20)")
	video := fs.String("video", def.VideoFile, "IVF (VP8) clip for --media files")
	audio := fs.String("audio", def.AudioFile, "Ogg (Opus) clip for --media files")
	sample := fs.Duration("sample", def.SampleInterval, "how often every node's state is read")
	jsonOut := fs.String("json", "", "write the figures as JSON to this file")
	htmlOut := fs.String("html", "", "write a self-contained HTML report with plots to this file")
	logFile := fs.String("log", "", "write the harness's and the in-process nodes' logs to this file")
	logLevel := fs.String("log-level", "info", "level for --log: debug, info, warn or error")
	logDir := fs.String("log-dir", "", "with --procs, keep each child's log in this directory")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process to this file")
	shardTarget := fs.Int("shard-target", 0, "presence messages a shard should carry per announce interval, which each node hears (0: 24 up to 200 nodes, 4800/nodes above, at least 4)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *callSeconds <= 0 {
		return errors.New("harness: --call-seconds must be positive")
	}
	cfg := def
	cfg.Nodes, cfg.Relays, cfg.Duration = *nodes, *relays, *duration
	cfg.Scenario, cfg.Media = harness.Scenario(*scenario), harness.Media(*media)
	cfg.Procs, cfg.Seed = *procs, *seed
	cfg.CallTime = time.Duration(*callSeconds * float64(time.Second))
	cfg.CallSpread = *callSpread
	cfg.ChurnRate = *churnRate
	cfg.Ramp = *ramp
	cfg.ShardTarget = *shardTarget
	cfg.VideoFile, cfg.AudioFile = *video, *audio
	cfg.SampleInterval = *sample
	cfg.LogDir = *logDir
	cfg.Progress = os.Stderr
	cfg.ProgressTTY = isatty.IsTerminal(os.Stderr.Fd())
	if err := cfg.Validate(); err != nil {
		return err
	}
	if *logFile != "" {
		log, closeLog, err := fileLogger(*logFile, *logLevel)
		if err != nil {
			return err
		}
		defer closeLog()
		cfg.Logger = log
		cfg.NodeLogger = log
	}
	if os.Getenv("GOGC") == "" {
		// Hundreds of in-process nodes allocate fast; collecting at 4x the
		// live heap instead of 2x gives their CPU back for a bigger peak
		// (the idle scenario measures memory after a collection). GOGC
		// overrides.
		debug.SetGCPercent(harnessGOGC)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("harness: --cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("harness: --cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	rep, err := harness.Run(ctx, cfg)
	if rep == nil {
		return err
	}
	fmt.Print(rep.Table())
	if *jsonOut != "" {
		b, jerr := json.MarshalIndent(rep, "", "  ")
		if jerr == nil {
			jerr = os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
		}
		if jerr != nil {
			return errors.Join(err, fmt.Errorf("harness: --json: %w", jerr))
		}
	}
	if *htmlOut != "" {
		f, herr := os.Create(*htmlOut)
		if herr == nil {
			herr = rep.WriteHTML(f, "serendip harness "+strings.Join(args, " "))
			herr = errors.Join(herr, f.Close())
		}
		if herr != nil {
			return errors.Join(err, fmt.Errorf("harness: --html: %w", herr))
		}
	}
	return err
}

// fileLogger logs text at level to a file.
func fileLogger(path, level string) (*slog.Logger, func(), error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, fmt.Errorf("bad log level %q (want debug, info, warn or error)", level)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("harness: --log: %w", err)
	}
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: l})), func() { f.Close() }, nil
}
