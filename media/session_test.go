package media

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCall is a whole call between two sessions over real loopback UDP: both
// connect, send and receive video and audio, chat both ways and record; then
// A vanishes without a bye and B notices.
func TestCall(t *testing.T) {
	eng := newTestEngine(t, nil)
	dirA, dirB := t.TempDir(), t.TempDir()
	media := SessionConfig{VideoFile: clipIVF, AudioFile: clipOgg}
	cfgA, cfgB := media, media
	cfgA.RecordDir, cfgA.RecordName = dirA, "a"
	cfgB.RecordDir, cfgB.RecordName = dirB, "b"
	a, b := startCall(t, eng, eng, cfgA, cfgB)

	for _, p := range []*peer{a, b} {
		p.waitState(t, StateConnecting, 5*time.Second)
		p.waitState(t, StateConnected, 10*time.Second)
	}
	for _, p := range []*peer{a, b} {
		st := p.s.Stats()
		if !st.Connected || st.ConnectedAt.IsZero() || st.State != StateConnected {
			t.Fatalf("%s: stats after connect: %+v", p.name, st)
		}
	}

	waitFor(t, 15*time.Second, "media both ways", func() bool {
		sa, sb := a.s.Stats(), b.s.Stats()
		return sa.VideoFramesReceived > 20 && sa.AudioPacketsReceived > 20 &&
			sb.VideoFramesReceived > 20 && sb.AudioPacketsReceived > 20
	})

	chatUntilOpen(t, a, "hello from A")
	expectChat(t, b, "hello from A")
	chatUntilOpen(t, b, "hi A, B here ☺")
	expectChat(t, a, "hi A, B here ☺")
	if err := a.s.SendChat(strings.Repeat("x", MaxChatSize+1)); !errors.Is(err, ErrChatTooLong) {
		t.Fatalf("long chat: %v", err)
	}
	if err := a.s.SendChat("\xff"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("non-UTF-8 chat: %v", err)
	}

	for _, p := range []*peer{a, b} {
		st := p.s.Stats()
		t.Logf("%s: %+v", p.name, st)
		if st.VideoFramesSent == 0 || st.AudioPacketsSent == 0 || st.BytesReceived == 0 {
			t.Fatalf("%s: nothing sent or received: %+v", p.name, st)
		}
		if st.ChatSent != 1 || st.ChatReceived != 1 {
			t.Fatalf("%s: chat counts %+v", p.name, st)
		}
	}

	// A vanishes: Close, no bye. B must notice within seconds.
	closedAt := time.Now()
	if err := a.s.Close(); err != nil {
		t.Fatalf("A Close: %v", err)
	}
	a.waitState(t, StateClosed, time.Second)
	b.waitState(t, StateFailed, 10*time.Second)
	t.Logf("B noticed A leaving after %v", time.Since(closedAt).Round(time.Millisecond))
	if err := a.s.Close(); err != nil { // idempotent
		t.Fatalf("second Close: %v", err)
	}
	if err := a.s.SendChat("anyone?"); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendChat after Close: %v", err)
	}
	if err := b.s.Close(); err != nil {
		t.Fatalf("B Close: %v", err)
	}
	b.waitState(t, StateClosed, time.Second)
	checkNoLeaks(t, a.s, b.s)

	for _, rec := range []struct{ dir, name string }{{dirA, "a"}, {dirB, "b"}} {
		ivf := filepath.Join(rec.dir, rec.name+".ivf")
		ogg := filepath.Join(rec.dir, rec.name+".ogg")
		frames, pages := countIVF(t, ivf), countOgg(t, ogg)
		t.Logf("recording %s: %d video frames, %d audio pages", rec.name, frames, pages)
		if frames == 0 || pages == 0 {
			t.Fatalf("recording %s is empty: %d frames, %d pages", rec.name, frames, pages)
		}
		ffmpegDecodes(t, ivf)
		ffmpegDecodes(t, ogg)
	}
}

// TestPartnerVanishes: the partner's DTLS goodbye is ignored, as if its
// machine dropped off the network, so only ICE can tell. B also closes itself
// from inside its OnState callback, as a node may.
func TestPartnerVanishes(t *testing.T) {
	eng := newTestEngine(t, nil)
	engB := newTestEngine(t, func(c *EngineConfig) { c.ignoreRemoteClose = true })
	dir := t.TempDir()
	a, b := newPeer("A"), newPeer("B")
	cfgA := a.config(t, SessionConfig{Role: Offerer, VideoFile: clipIVF, AudioFile: clipOgg}, b)
	cfgB := b.config(t, SessionConfig{Role: Answerer, RecordDir: dir, RecordName: "b"}, a)
	onState := cfgB.OnState
	cfgB.OnState = func(st State) {
		onState(st)
		if st == StateFailed {
			if err := b.s.Close(); err != nil { // from inside the callback
				t.Errorf("Close in callback: %v", err)
			}
		}
	}
	var err error
	if a.s, err = eng.NewSession(cfgA); err != nil {
		t.Fatal(err)
	}
	if b.s, err = engB.NewSession(cfgB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.shutdown(); b.shutdown() })
	a.serve(t)
	b.serve(t)
	if err := a.s.Start(); err != nil {
		t.Fatal(err)
	}
	b.waitState(t, StateConnected, 10*time.Second)
	waitFor(t, 10*time.Second, "video at B", func() bool { return b.s.Stats().VideoFramesReceived > 10 })

	closedAt := time.Now()
	if err := a.s.Close(); err != nil {
		t.Fatal(err)
	}
	b.waitState(t, StateFailed, 10*time.Second)
	t.Logf("ICE noticed A vanish after %v", time.Since(closedAt).Round(time.Millisecond))
	b.waitState(t, StateClosed, 5*time.Second)
	select {
	case <-b.s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("B's callback goroutine did not end")
	}
	checkNoLeaks(t, a.s, b.s)
	if n := countIVF(t, filepath.Join(dir, "b.ivf")); n == 0 {
		t.Fatal("no video recorded")
	}
	if n := countOgg(t, filepath.Join(dir, "b.ogg")); n == 0 {
		t.Fatal("no audio recorded")
	}
	ffmpegDecodes(t, filepath.Join(dir, "b.ivf"))
}

// TestDataOnly: no media files on either side; the call still connects and
// chats.
func TestDataOnly(t *testing.T) {
	eng := newTestEngine(t, nil)
	a, b := startCall(t, eng, eng, SessionConfig{}, SessionConfig{})
	a.waitState(t, StateConnected, 10*time.Second)
	b.waitState(t, StateConnected, 10*time.Second)
	chatUntilOpen(t, b, "text only")
	expectChat(t, a, "text only")
	chatUntilOpen(t, a, "fine by me")
	expectChat(t, b, "fine by me")
	for _, p := range []*peer{a, b} {
		if st := p.s.Stats(); st.BytesReceived != 0 || st.VideoFramesSent != 0 {
			t.Fatalf("%s: media in a data-only call: %+v", p.name, st)
		}
	}
	a.shutdown()
	b.shutdown()
	checkNoLeaks(t, a.s, b.s)
}

// TestTextOnly: text-only sides offer no track, so the call's SDP has the
// data channel alone and chat works; a text-only answerer still receives
// what a partner with files offers to send; a text-only session with a
// source is refused.
func TestTextOnly(t *testing.T) {
	eng := newTestEngine(t, func(c *EngineConfig) { c.TextOnly = true })
	a, b := startCall(t, eng, eng, SessionConfig{TextOnly: true}, SessionConfig{TextOnly: true})
	a.waitState(t, StateConnected, 10*time.Second)
	b.waitState(t, StateConnected, 10*time.Second)
	for _, p := range []*peer{a, b} {
		sdp := p.s.pc.LocalDescription().SDP
		if strings.Contains(sdp, "m=video") || strings.Contains(sdp, "m=audio") || !strings.Contains(sdp, "m=application") {
			t.Fatalf("%s: text-only SDP:\n%s", p.name, sdp)
		}
	}
	chatUntilOpen(t, b, "just text")
	expectChat(t, a, "just text")
	a.shutdown()
	b.shutdown()
	checkNoLeaks(t, a.s, b.s)

	files := newTestEngine(t, nil)
	a, b = startCall(t, files, eng, SessionConfig{VideoFile: clipIVF, AudioFile: clipOgg}, SessionConfig{TextOnly: true})
	b.waitState(t, StateConnected, 10*time.Second)
	waitFor(t, 10*time.Second, "media at the text-only side", func() bool {
		st := b.s.Stats()
		return st.VideoFramesReceived > 5 && st.AudioPacketsReceived > 5
	})
	if st := a.s.Stats(); st.BytesReceived != 0 {
		t.Fatalf("the side with files received media from a text-only one: %+v", st)
	}
	a.shutdown()
	b.shutdown()
	checkNoLeaks(t, a.s, b.s)

	_, err := eng.NewSession(SessionConfig{Role: Offerer, Send: func(Signal) error { return nil }, TextOnly: true, VideoFile: clipIVF})
	if !errors.Is(err, ErrBadConfig) {
		t.Fatalf("TextOnly with a video file: %v, want ErrBadConfig", err)
	}
}

// TestOneWayMedia: only the answerer has files; the offerer, with none, still
// sees and hears it.
func TestOneWayMedia(t *testing.T) {
	eng := newTestEngine(t, nil)
	a, b := startCall(t, eng, eng, SessionConfig{}, SessionConfig{VideoFile: clipIVF, AudioFile: clipOgg})
	a.waitState(t, StateConnected, 10*time.Second)
	waitFor(t, 10*time.Second, "media at A", func() bool {
		st := a.s.Stats()
		return st.VideoFramesReceived > 5 && st.AudioPacketsReceived > 5
	})
	if st := b.s.Stats(); st.BytesReceived != 0 {
		t.Fatalf("B received media from a side without any: %+v", st)
	}
	a.shutdown()
	b.shutdown()
	checkNoLeaks(t, a.s, b.s)
}

func TestSessionSignalErrors(t *testing.T) {
	eng := newTestEngine(t, nil)
	send := func(Signal) error { return nil }
	off, err := eng.NewSession(SessionConfig{Role: Offerer, Send: send, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	ans, err := eng.NewSession(SessionConfig{Role: Answerer, Send: send, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer ans.Close()

	if err := off.HandleSignal(Signal{Kind: SignalAnswer, SDP: "v=0"}); !errors.Is(err, ErrUnexpectedSignal) {
		t.Errorf("answer before Start: %v", err)
	}
	if err := off.HandleSignal(Signal{Kind: SignalOffer, SDP: "v=0"}); !errors.Is(err, ErrUnexpectedSignal) {
		t.Errorf("offer at offerer: %v", err)
	}
	if err := ans.HandleSignal(Signal{Kind: SignalAnswer, SDP: "v=0"}); !errors.Is(err, ErrUnexpectedSignal) {
		t.Errorf("answer at answerer: %v", err)
	}
	if err := ans.HandleSignal(Signal{Kind: SignalOffer, SDP: "garbage"}); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage offer: %v", err)
	}
	if err := ans.HandleSignal(Signal{Kind: 42}); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("unknown kind: %v", err)
	}
	for _, k := range []SignalKind{SignalHello, SignalBye} {
		if err := ans.HandleSignal(Signal{Kind: k, MatchID: "m"}); err != nil {
			t.Errorf("%v should be ignored: %v", k, err)
		}
	}
	// Candidates before the remote description are queued, up to a limit.
	cand := Signal{Kind: SignalCandidate, Candidate: testCandidate}
	for i := range maxEarlyCandidates {
		if err := off.HandleSignal(cand); err != nil {
			t.Fatalf("early candidate %d: %v", i, err)
		}
	}
	if err := off.HandleSignal(cand); !errors.Is(err, ErrTooLarge) {
		t.Errorf("candidate over the limit: %v", err)
	}
	if err := off.Start(); err != nil {
		t.Fatal(err)
	}
	if err := off.Start(); !errors.Is(err, ErrAlreadyStarted) {
		t.Errorf("second Start: %v", err)
	}
	if err := off.SendChat("too early"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("chat before connect: %v", err)
	}
	if err := off.Close(); err != nil {
		t.Fatal(err)
	}
	if err := off.HandleSignal(cand); !errors.Is(err, ErrClosed) {
		t.Errorf("signal after Close: %v", err)
	}
	if err := off.Start(); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v", err)
	}
	if st := off.Stats(); st.State != StateClosed || st.Connected {
		t.Errorf("stats after Close: %+v", st)
	}
}

// TestSendFailure: if the offer cannot be sent, Start says so and the session
// fails.
func TestSendFailure(t *testing.T) {
	eng := newTestEngine(t, nil)
	states := make(chan State, 8)
	s, err := eng.NewSession(SessionConfig{
		Role:    Offerer,
		Send:    func(Signal) error { return errors.New("stream reset") },
		OnState: func(st State) { states <- st },
		Logger:  testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), "stream reset") {
		t.Fatalf("Start: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	<-s.Done() // the last callback has returned
	close(states)
	var got []State
	for st := range states {
		got = append(got, st)
	}
	want := []State{StateConnecting, StateFailed, StateClosed}
	if len(got) != len(want) {
		t.Fatalf("states %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("states %v, want %v", got, want)
		}
	}
	checkNoLeaks(t, s)
}

func TestConfigErrors(t *testing.T) {
	eng := newTestEngine(t, nil)
	send := func(Signal) error { return nil }
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  SessionConfig
		want error
	}{
		{"no role", SessionConfig{Send: send}, ErrBadConfig},
		{"no send", SessionConfig{Role: Offerer}, ErrBadConfig},
		{"record without name", SessionConfig{Role: Offerer, Send: send, RecordDir: dir}, ErrBadConfig},
		{"record name with slash", SessionConfig{Role: Offerer, Send: send, RecordDir: dir, RecordName: "../x"}, ErrBadConfig},
		{"record name dotdot", SessionConfig{Role: Offerer, Send: send, RecordDir: dir, RecordName: ".."}, ErrBadConfig},
		{"missing video", SessionConfig{Role: Offerer, Send: send, VideoFile: "nope.ivf"}, ErrBadMedia},
		{"audio as video", SessionConfig{Role: Offerer, Send: send, VideoFile: clipOgg}, ErrBadMedia},
		{"video as audio", SessionConfig{Role: Offerer, Send: send, AudioFile: clipIVF}, ErrBadMedia},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := eng.NewSession(tc.cfg)
			if !errors.Is(err, tc.want) {
				if s != nil {
					_ = s.Close()
				}
				t.Fatalf("NewSession: %v, want %v", err, tc.want)
			}
		})
	}

	for _, c := range []EngineConfig{
		{UDPPortMin: 5000, UDPPortMax: 4000},
		{UDPPortMax: 4000},
		{FailedTimeout: -1},
		{LoopbackOnly: true, RelayOnly: true},
	} {
		if _, err := NewEngine(c); !errors.Is(err, ErrBadConfig) {
			t.Errorf("NewEngine(%+v): %v, want ErrBadConfig", c, err)
		}
	}
}
