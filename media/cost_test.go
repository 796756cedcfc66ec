package media

import (
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"
)

// BenchmarkDataCall measures what one data-only call costs both sides:
// two sessions on loopback, offer and answer, ICE, DTLS, SCTP, the chat
// channel open, then Close. cpu-ms/call is this process's user and system
// CPU per call (getrusage), the figure the harness's budget is made of.
func BenchmarkDataCall(b *testing.B) { benchDataCall(b, false) }

// BenchmarkTextCall is BenchmarkDataCall between text-only sessions on a
// text-only engine (EngineConfig.TextOnly: no track, no interceptor), as
// the harness's --media data and none nodes make them.
func BenchmarkTextCall(b *testing.B) { benchDataCall(b, true) }

func benchDataCall(b *testing.B, textOnly bool) {
	cfg := LoopbackEngineConfig()
	cfg.TextOnly = textOnly
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := NewEngine(cfg)
	if err != nil {
		b.Fatal(err)
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	b.ResetTimer()
	for range b.N {
		oneDataCall(b, eng, textOnly)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpu()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/call")
}

func oneDataCall(b *testing.B, eng *Engine, textOnly bool) {
	type side struct {
		s     *Session
		inbox chan Signal
		open  chan struct{}
	}
	mk := func() *side { return &side{inbox: make(chan Signal, 64), open: make(chan struct{}, 1)} }
	a, z := mk(), mk()
	cfgFor := func(me, other *side, role Role) SessionConfig {
		return SessionConfig{
			Role:     role,
			TextOnly: textOnly,
			Send:     func(sig Signal) error { other.inbox <- sig; return nil },
			OnState: func(st State) {
				if st == StateConnected {
					select {
					case me.open <- struct{}{}:
					default:
					}
				}
			},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
	}
	var err error
	if a.s, err = eng.NewSession(cfgFor(a, z, Offerer)); err != nil {
		b.Fatal(err)
	}
	if z.s, err = eng.NewSession(cfgFor(z, a, Answerer)); err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	for _, p := range []*side{a, z} {
		go func() {
			for {
				select {
				case <-stop:
					return
				case sig := <-p.inbox:
					_ = p.s.HandleSignal(sig)
				}
			}
		}()
	}
	_ = z.s.Start()
	_ = a.s.Start()
	for _, p := range []*side{a, z} {
		select {
		case <-p.open:
		case <-time.After(10 * time.Second):
			b.Fatal("no connection")
		}
	}
	for deadline := time.Now().Add(10 * time.Second); z.s.SendChat("hi") != nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("chat channel never opened")
		}
	}
	close(stop)
	_ = a.s.Close()
	_ = z.s.Close()
}

// TestEngineCertificate: an engine's sessions share one DTLS certificate
// until it is certLifetime old; then the next session gets a new one.
func TestEngineCertificate(t *testing.T) {
	eng := newTestEngine(t, nil)
	a, err := eng.certificate()
	if err != nil {
		t.Fatal(err)
	}
	b, err := eng.certificate()
	if err != nil {
		t.Fatal(err)
	}
	if !a.Equals(b) {
		t.Fatal("two sessions of one engine got different certificates")
	}
	if left := time.Until(a.Expires()); left < 24*time.Hour {
		t.Fatalf("certificate expires in %v, want days", left)
	}
	eng.certMu.Lock()
	eng.certDone = eng.certDone.Add(-certLifetime)
	eng.certMu.Unlock()
	c, err := eng.certificate()
	if err != nil {
		t.Fatal(err)
	}
	if c.Equals(a) {
		t.Fatal("certificate not renewed after certLifetime")
	}
}
