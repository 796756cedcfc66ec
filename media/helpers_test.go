package media

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

const (
	clipIVF = "../testdata/clip.ivf"
	clipOgg = "../testdata/clip.ogg"
	// clipOgg60 is the harness's microphone: 60-ms packets.
	clipOgg60 = "../testdata/clip-60ms.ogg"
)

// testLogger logs through t.Log until the test ends (pion goroutines may
// outlive it by a moment; their late lines are dropped).
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	level := slog.LevelInfo
	if os.Getenv("MEDIA_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// peer is one end of an in-process call: its session, the callbacks it got,
// and an inbox the partner's Send writes to.
type peer struct {
	name   string
	s      *Session
	states chan State
	chats  chan string
	inbox  chan Signal
	stop   chan struct{}
	wg     sync.WaitGroup
}

func newPeer(name string) *peer {
	return &peer{
		name:   name,
		states: make(chan State, 16),
		chats:  make(chan string, 64),
		inbox:  make(chan Signal, 256),
		stop:   make(chan struct{}),
	}
}

// config fills in the callbacks and a Send that delivers to partner's inbox
// (never synchronously into the partner's session).
func (p *peer) config(t *testing.T, cfg SessionConfig, partner *peer) SessionConfig {
	cfg.Logger = testLogger(t).With("peer", p.name)
	cfg.OnState = func(st State) {
		select {
		case p.states <- st:
		default:
			t.Errorf("%s: state channel full", p.name)
		}
	}
	cfg.OnChat = func(text string) { p.chats <- text }
	cfg.Send = func(sig Signal) error {
		// Every signal crosses the wire format, as it would on a stream.
		var buf bytes.Buffer
		if err := WriteSignal(&buf, sig); err != nil {
			t.Errorf("%s: WriteSignal(%v): %v", p.name, sig.Kind, err)
			return err
		}
		got, err := ReadSignal(&buf)
		if err != nil {
			t.Errorf("%s: ReadSignal: %v", p.name, err)
			return err
		}
		select {
		case partner.inbox <- got:
			return nil
		default:
			return errors.New("inbox full")
		}
	}
	return cfg
}

// serve feeds the inbox to the session until stopped.
func (p *peer) serve(t *testing.T) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			select {
			case <-p.stop:
				return
			case sig := <-p.inbox:
				if err := p.s.HandleSignal(sig); err != nil && !errors.Is(err, ErrClosed) {
					t.Errorf("%s: HandleSignal(%v): %v", p.name, sig.Kind, err)
				}
			}
		}
	}()
}

func (p *peer) shutdown() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.wg.Wait()
	if p.s != nil {
		_ = p.s.Close()
	}
}

// waitState reads states until want arrives; it fails on a state past want.
func (p *peer) waitState(t *testing.T, want State, timeout time.Duration) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case st := <-p.states:
			if st == want {
				return
			}
			if st > want {
				t.Fatalf("%s: got state %v while waiting for %v", p.name, st, want)
			}
		case <-timer.C:
			t.Fatalf("%s: no state %v within %v (stats %+v)", p.name, want, timeout, p.s.Stats())
		}
	}
}

// startCall builds both sessions on eng, wires them and starts the offerer.
func startCall(t *testing.T, eng, engB *Engine, cfgA, cfgB SessionConfig) (a, b *peer) {
	t.Helper()
	a, b = newPeer("A"), newPeer("B")
	cfgA.Role, cfgB.Role = Offerer, Answerer
	var err error
	if a.s, err = eng.NewSession(a.config(t, cfgA, b)); err != nil {
		t.Fatal(err)
	}
	if b.s, err = engB.NewSession(b.config(t, cfgB, a)); err != nil {
		_ = a.s.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.shutdown(); b.shutdown() })
	a.serve(t)
	b.serve(t)
	if err := b.s.Start(); err != nil { // answerer: only marks it ready
		t.Fatal(err)
	}
	if err := a.s.Start(); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func newTestEngine(t *testing.T, mod func(*EngineConfig)) *Engine {
	t.Helper()
	cfg := LoopbackEngineConfig()
	cfg.Logger = testLogger(t).With("peer", "pion")
	if mod != nil {
		mod(&cfg)
	}
	eng, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// chatUntilOpen sends text once the data channel is open.
func chatUntilOpen(t *testing.T, p *peer, text string) {
	t.Helper()
	waitFor(t, 10*time.Second, p.name+"'s chat channel to open", func() bool {
		err := p.s.SendChat(text)
		if err != nil && !errors.Is(err, ErrNotConnected) {
			t.Fatalf("%s: SendChat: %v", p.name, err)
		}
		return err == nil
	})
}

func expectChat(t *testing.T, p *peer, want string) {
	t.Helper()
	select {
	case got := <-p.chats:
		if got != want {
			t.Fatalf("%s: chat %q, want %q", p.name, got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no chat message", p.name)
	}
}

// countIVF reads an IVF file with pion's reader and returns its frame count.
func countIVF(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, h, err := ivfreader.NewWith(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if h.FourCC != "VP80" {
		t.Fatalf("%s: fourcc %q", path, h.FourCC)
	}
	n := 0
	for {
		_, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: frame %d: %v", path, n, err)
		}
		n++
	}
	if int(h.NumFrames) != n {
		t.Fatalf("%s: header says %d frames, file has %d (not finalised?)", path, h.NumFrames, n)
	}
	return n
}

// countOgg reads an Ogg file with pion's reader and returns its audio page count.
func countOgg(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	n := 0
	for {
		data, h, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: page %d: %v", path, n, err)
		}
		if _, isHeader := h.HeaderType(data); !isHeader {
			n++
		}
	}
	return n
}

// ffmpegDecodes decodes a file with ffmpeg, if installed, and fails on any
// decoder complaint.
func ffmpegDecodes(t *testing.T, path string) {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Logf("ffmpeg not installed; not decoding %s", filepath.Base(path))
		return
	}
	out, err := exec.Command(ffmpeg, "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("ffmpeg cannot decode %s: %v\n%s", path, err, out)
	}
}

// checkNoLeaks fails if a goroutine is still running code of this package
// (other than tests) once the sessions are closed.
func checkNoLeaks(t *testing.T, sessions ...*Session) {
	t.Helper()
	for _, s := range sessions {
		if n := s.running.Load(); n != 0 {
			t.Errorf("%d session goroutines still running after Close", n)
		}
		// Close returns before the last callback only if one was running at
		// that moment; Done tells when it has finished.
		select {
		case <-s.Done():
		case <-time.After(5 * time.Second):
			t.Errorf("callback goroutine still running 5 s after Close")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "serendip/media.") && !strings.Contains(g, "_test.go") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of package media still running:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		<-tick.C
	}
}
