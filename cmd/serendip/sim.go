package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"serendip/discovery"
	"serendip/discovery/simnet"
	"serendip/node"
)

// runSim runs a matching scenario in the deterministic simulator, for
// Serendip and the baseline, and prints the figures.
func runSim(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	nodes := fs.String("nodes", "1000", "network sizes, comma-separated (one run per size), e.g. 1000,10000,100000")
	seed := fs.Uint64("seed", 1, "random seed: the same seed and flags replay the same run")
	duration := fs.Duration("duration", 60*time.Second, "simulated time per run")
	spread := fs.Duration("spread", 0, "nodes press Start at uniform times in [0, spread); 0 starts everyone at once (full contention)")
	call := fs.Duration("call", 30*time.Second, "mean call length; calls then end with Next and both search again (0: calls never end)")
	latency := fs.String("latency", "uniform:20ms-80ms", "one-way latency: uniform:MIN-MAX or lognormal:MEDIAN,SIGMA")
	loss := fs.Float64("loss", 0, "probability that a message is lost")
	silent := fs.Bool("silent-loss", false, "lost stream messages vanish without a reset (only timeouts recover)")
	crash := fs.Float64("crash", 0, "fraction of nodes that crash at a random time")
	leave := fs.Float64("leave", 0, "fraction of nodes that press Stop at a random time")
	join := fs.Float64("join", 0, "fraction of nodes that come online at a random time in the first half")
	partition := fs.Float64("partition", 0, "fraction of nodes cut off from the rest for the middle fifth of the run")
	interests := fs.Float64("interests", 0, "fraction of nodes that search with one of four interests")
	baseline := fs.Bool("baseline", true, "also run the baseline design (random picks every 500ms, mutual picks match)")
	serendip := fs.Bool("serendip", true, "run Serendip")
	sharded := fs.Bool("shard", true, "sharded presence (false: one topic for everyone)")
	target := fs.Int("shard-target", 0, "presence messages per shard per announce interval (default discovery.DefaultShardConfig)")
	epoch := fs.Duration("epoch", 0, "shard epoch (default discovery.DefaultShardConfig)")
	maxLevel := fs.Int("max-level", -1, "deepest shard level (default discovery.DefaultShardConfig)")
	level := fs.Int("level", -1, "every node's starting shard level (-1: the level the workload calls for)")
	jitter := fs.Duration("jitter", 0, "matcher ClaimJitter (default: 0.6 round trips of --latency)")
	pairWait := fs.Duration("pair-wait", 0, "matcher PairWait (default: 3 round trips of --latency)")
	jsonFile := fs.String("json", "", "also write the reports to this file as JSON")
	lonelyWait := fs.Duration("lonely-wait", 0, "how long a search may stay lonely before it joins the parent shard too (default discovery.DefaultShardConfig)")
	local := fs.Bool("local", false, "the matcher and shard settings of nodes on one machine (node.LocalConfig: the harness's), not the internet defaults")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var sizes []int
	for _, s := range strings.Split(*nodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("sim: --nodes: bad size %q", s)
		}
		sizes = append(sizes, n)
	}
	lat, err := simnet.ParseLatency(*latency)
	if err != nil {
		return fmt.Errorf("sim: --latency: %w", err)
	}
	rtt := 2 * lat.Mean()
	mc := discovery.DefaultConfig()
	mc.ClaimJitter, mc.PairWait = rtt*6/10, 3*rtt
	sc := discovery.DefaultShardConfig(mc)
	if *local {
		lc := node.LocalConfig()
		mc, sc = lc.Matcher, lc.ShardConfig()
	}
	if *jitter > 0 {
		mc.ClaimJitter = *jitter
	}
	if *pairWait > 0 {
		mc.PairWait = *pairWait
	}
	if *target > 0 {
		sc.Target = *target
	}
	if *lonelyWait > 0 {
		sc.LonelyWait = *lonelyWait
	}
	if *epoch > 0 {
		sc.Epoch = *epoch
	}
	if *maxLevel >= 0 {
		sc.MaxLevel = *maxLevel
	}
	var reps []simnet.Report
	out := os.Stdout
	fmt.Fprintf(out, "latency %v (RTT %v), ClaimJitter %v, PairWait %v, shards: %v (target %d, epoch %v), loss %g, crash %g, seed %d\n\n",
		lat, rtt.Round(time.Millisecond), mc.ClaimJitter.Round(time.Millisecond), mc.PairWait.Round(time.Millisecond),
		*sharded, sc.Target, sc.Epoch, *loss, *crash, *seed)
	var failed []string
	for _, n := range sizes {
		for _, base := range []bool{false, true} {
			if base && !*baseline || !base && !*serendip {
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s := simnet.Scenario{
				Nodes: n, Seed: *seed, Baseline: base, Duration: *duration, StartSpread: *spread, CallLength: *call,
				Latency: lat, Loss: *loss, SilentLoss: *silent, Crash: *crash, Leave: *leave, Join: *join,
				Partition: *partition, Interests: *interests, Matcher: mc, Sharded: *sharded, Shard: sc,
				ShardLevel: *level, KeepGoing: true,
			}
			rep, err := simnet.RunScenario(s)
			if err != nil {
				return fmt.Errorf("sim: %d nodes: %w", n, err)
			}
			reps = append(reps, rep)
			if err := simnet.WriteTable(out, reps[len(reps)-1:]); err != nil {
				return err
			}
			if rep.DoubleMatches+rep.Stuck > 0 {
				failed = append(failed, fmt.Sprintf("%s, %d nodes: %d double matches, %d stuck: %s",
					rep.Design, n, rep.DoubleMatches, rep.Stuck, strings.Join(rep.Violations[:min(3, len(rep.Violations))], "; ")))
			}
		}
	}
	fmt.Fprintln(out)
	if err := simnet.WriteTable(out, reps); err != nil {
		return err
	}
	if *jsonFile != "" {
		b, err := json.MarshalIndent(reps, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonFile, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("sim: %w", err)
		}
	}
	if len(failed) > 0 {
		return errors.New("sim: invariants broken:\n  " + strings.Join(failed, "\n  "))
	}
	return nil
}
