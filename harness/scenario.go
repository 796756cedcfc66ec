package harness

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// launchPar is how many nodes start at a time outside cold-start.
const launchPar = 8

// drive runs the scenario until ctx ends.
func (r *run) drive(ctx context.Context) error {
	switch r.cfg.Scenario {
	case Steady:
		return r.steady(ctx)
	case ColdStart:
		return r.coldStart(ctx)
	case NextStorm:
		return r.nextStorm(ctx)
	case Churn:
		return r.churn(ctx)
	case Lonely:
		return r.lonelyScenario(ctx)
	case Idle:
		return r.idleScenario(ctx)
	}
	return fmt.Errorf("%w: scenario %q", ErrConfig, r.cfg.Scenario)
}

func (r *run) steady(ctx context.Context) error {
	return r.launchMany(ctx, r.cfg.Nodes, launchPar, true, r.cfg.CallTime)
}

// coldStart launches every node at the same moment.
func (r *run) coldStart(ctx context.Context) error {
	r.mu.Lock()
	r.coldAt = time.Now()
	r.mu.Unlock()
	return r.launchMany(ctx, r.cfg.Nodes, 0, true, r.cfg.CallTime)
}

// latest returns the newest sample taken after t, waiting for one.
func (r *run) latest(ctx context.Context, after time.Time) (Sample, bool) {
	at := after.Sub(r.start).Seconds()
	for {
		r.mu.Lock()
		n := len(r.timeline)
		var s Sample
		if n > 0 {
			s = r.timeline[n-1]
		}
		r.mu.Unlock()
		if n > 0 && s.T > at {
			return s, true
		}
		select {
		case <-ctx.Done():
			return s, false
		case <-time.After(r.cfg.SampleInterval / 4):
		}
	}
}

// waitInCall waits until at least target nodes are sampled in a call,
// after t, or until d passes. It returns when that was seen.
func (r *run) waitInCall(ctx context.Context, after time.Time, target int, d time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		s, ok := r.latest(ctx, after)
		if !ok {
			return time.Time{}, false
		}
		if s.InCall >= target {
			return r.start.Add(time.Duration(s.T * float64(time.Second))), true
		}
		after = r.start.Add(time.Duration(s.T * float64(time.Second)))
	}
	return time.Time{}, false
}

// nextStorm: bots that never hang up; once the calls have settled (every
// node that can be is in a call, or 15 s passed) and gone on for CallTime,
// everyone presses Next at the same moment. Repeats until the end.
func (r *run) nextStorm(ctx context.Context) error {
	if err := r.launchMany(ctx, r.cfg.Nodes, launchPar, true, 0); err != nil {
		return err
	}
	const settle = 15 * time.Second
	hold := r.cfg.CallTime
	for ctx.Err() == nil {
		target := len(r.alive()) / 2 * 2
		r.waitInCall(ctx, time.Now(), target, settle)
		// Let the calls go on for a call time.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(hold):
		}
		s, _ := r.latest(ctx, time.Now().Add(-r.cfg.SampleInterval))
		nodes := r.alive()
		gate := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		errs := 0
		for _, t := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				if err := t.m.Next(ctx); err != nil {
					mu.Lock()
					errs++
					mu.Unlock()
				}
			}()
		}
		time.Sleep(10 * time.Millisecond) // every presser at the gate
		at := time.Now()
		close(gate)
		wg.Wait()
		storm := Storm{AtSeconds: round1(at.Sub(r.start).Seconds()), InCallBefore: s.InCall, Pressed: len(nodes), Errors: errs}
		if back, ok := r.waitInCall(ctx, at, target, settle); ok {
			ms := float64(back.Sub(at).Milliseconds())
			storm.RecoveredMs = &ms
		}
		r.mu.Lock()
		r.storms = append(r.storms, storm)
		r.mu.Unlock()
	}
	return nil
}

// churnStates are the states churn kills in, in turn: searching (which
// covers claiming), matched (a claim accepted, signalling under way) and
// in a call.
var churnStates = []string{"searching", "matched", "in_call"}

// churn kills nodes at the churn rate, each replaced by a fresh one.
func (r *run) churn(ctx context.Context) error {
	if err := r.launchMany(ctx, r.cfg.Nodes, launchPar, true, r.cfg.CallTime); err != nil {
		return err
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / r.cfg.churnRate()))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		v := r.pickVictim(ctx, churnStates[i%len(churnStates)])
		if v == nil {
			continue
		}
		r.kill(ctx, v)
		seed := r.rng.Uint64()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.launch(ctx, true, r.cfg.CallTime, seed, time.Now()); err != nil && ctx.Err() == nil {
				r.log.Warn("replacement not launched", "err", err)
			}
		}()
	}
}

// pickVictim finds a running node in the wanted state: first among those
// last sampled in it, then by asking every node afresh (a node is matched
// for only a moment); failing both, any node.
func (r *run) pickVictim(ctx context.Context, want string) *tracked {
	nodes := r.alive()
	if len(nodes) == 0 {
		return nil
	}
	r.rng.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
	r.mu.Lock()
	var first, rest []*tracked
	for _, t := range nodes {
		if t.last.State == want {
			first = append(first, t)
		} else {
			rest = append(rest, t)
		}
	}
	r.mu.Unlock()
	for _, t := range append(first, rest...) {
		if ctx.Err() != nil {
			return nil
		}
		if st, err := t.m.State(ctx); err == nil && st.State == want {
			return t
		}
	}
	return nodes[0]
}

// lonelyScenario: one bot alone for a third of the run (at most 6 s), then
// a second.
func (r *run) lonelyScenario(ctx context.Context) error {
	alone := min(r.cfg.Duration/3, 6*time.Second)
	first, err := r.launch(ctx, true, r.cfg.CallTime, r.rng.Uint64(), time.Now())
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(alone):
	}
	r.mu.Lock()
	res := &LonelyResult{AloneSeconds: alone.Seconds(), LonelyWhileAlone: first.lonely}
	r.lonely = res
	r.mu.Unlock()
	at := time.Now()
	for i := 1; i < r.cfg.Nodes; i++ {
		if _, err := r.launch(ctx, true, r.cfg.CallTime, r.rng.Uint64(), at); err != nil {
			return err
		}
	}
	if back, ok := r.waitInCall(ctx, at, r.cfg.Nodes/2*2, r.cfg.Duration); ok {
		ms := float64(back.Sub(at).Milliseconds())
		r.mu.Lock()
		res.PairedMs = &ms
		r.mu.Unlock()
	}
	return nil
}

// idleScenario: nodes join and never search. Once every node is connected
// to someone and a few seconds have passed, the memory is measured.
func (r *run) idleScenario(ctx context.Context) error {
	n := r.cfg.Nodes
	if err := r.launchMany(ctx, n, launchPar, false, 0); err != nil {
		return err
	}
	deadline, _ := ctx.Deadline()
	joined := func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		c := 0
		for _, t := range r.nodes {
			if t.sampled && t.last.Peers > 0 {
				c++
			}
		}
		return c == n
	}
	settle(ctx, time.Until(deadline)-5*time.Second, joined)
	select {
	case <-ctx.Done():
	case <-time.After(min(3*time.Second, max(time.Until(deadline)-2*time.Second, 0))):
	}
	r.measureIdle(n)
	return nil
}

// progress prints the live progress line.
type progress struct {
	w    io.Writer
	tty  bool
	last time.Time
	// cpu and samples: the CPU shares of the samples since the last line.
	cpu     float64
	samples int
}

func (p *progress) show(s Sample, n int) {
	line := fmt.Sprintf("%6.1fs  up %d/%d  searching %d  matched %d  in call %d  calls %d  failed %d  stuck %d  double %d",
		s.T, s.Up, n, s.Searching, s.Matched, s.InCall, s.Calls, s.Failed, s.Stuck, s.Double)
	if s.CPU > 0 {
		p.cpu += s.CPU
		p.samples++
	}
	if p.samples > 0 {
		line += fmt.Sprintf("  cpu %.0f%%", 100*p.cpu/float64(p.samples))
	}
	if p.tty {
		p.cpu, p.samples = 0, 0
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		return
	}
	if time.Since(p.last) >= 5*time.Second {
		p.last = time.Now()
		p.cpu, p.samples = 0, 0
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
