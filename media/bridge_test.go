package media

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

type packetLog struct {
	mu   sync.Mutex
	pkts []rtp.Packet
}

func (l *packetLog) WriteRTP(p *rtp.Packet) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pkts = append(l.pkts, *p)
	return nil
}

var (
	vp8Key   = []byte{0x10, 0x00, 0x9d, 0x01, 0x2a} // S=1, PID 0, keyframe
	vp8Delta = []byte{0x10, 0x01, 0x00}             // S=1, PID 0, interframe
	vp8More  = []byte{0x00, 0xaa}                   // continuation of a frame
)

func pkt(ssrc uint32, seq uint16, ts uint32, payload []byte) *rtp.Packet {
	p := &rtp.Packet{
		Header:  rtp.Header{Version: 2, SSRC: ssrc, SequenceNumber: seq, Timestamp: ts, Marker: true},
		Payload: payload,
	}
	_ = p.Header.SetExtension(3, []byte{1, 2, 3})
	return p
}

// TestForwarderSwap: one stream for the receiver across a change of source:
// numbering continues, timestamps advance by the wall-clock gap, the new
// source's video starts at a keyframe, stale owners are dropped, and the
// sender's header extensions never pass through.
func TestForwarderSwap(t *testing.T) {
	var out packetLog
	f := newForwarder(&out, true, 90000)
	now := time.Unix(1000, 0)
	if v := f.forward(1, pkt(7, 100, 5000, vp8Key), now); v != stale {
		t.Fatalf("packet before any owner: %v, want stale", v)
	}
	f.take(1)
	if v := f.forward(1, pkt(7, 100, 5000, vp8Delta), now); v != waitingForKeyframe {
		t.Fatalf("delta frame first: %v, want waitingForKeyframe", v)
	}
	for i, p := range []*rtp.Packet{
		pkt(7, 101, 6000, vp8Key), pkt(7, 102, 6000, vp8More), pkt(7, 103, 9000, vp8Delta),
	} {
		if v := f.forward(1, p, now.Add(time.Duration(i)*33*time.Millisecond)); v != sent {
			t.Fatalf("packet %d: %v", i, v)
		}
	}
	if v := f.forward(1, pkt(7, 104, 9000, nil), now); v != skipped {
		t.Fatalf("padding: %v, want skipped", v)
	}

	// Next: a new partner, with its own SSRC, numbering and clock.
	f.take(2)
	swapAt := now.Add(500 * time.Millisecond)
	if v := f.forward(1, pkt(7, 105, 12000, vp8Key), swapAt); v != stale {
		t.Fatalf("old owner after the swap: %v, want stale", v)
	}
	if v := f.forward(2, pkt(99, 40000, 1<<31, vp8Delta), swapAt); v != waitingForKeyframe {
		t.Fatalf("new source without keyframe: %v", v)
	}
	for i, p := range []*rtp.Packet{pkt(99, 40001, 1<<31+10, vp8Key), pkt(99, 40002, 1<<31+3010, vp8Delta)} {
		if v := f.forward(2, p, swapAt); v != sent {
			t.Fatalf("new source packet %d: %v", i, v)
		}
	}
	got := out.pkts
	if len(got) != 5 {
		t.Fatalf("%d packets out, want 5", len(got))
	}
	for i, p := range got {
		if want := uint16(101 + i); p.SequenceNumber != want {
			t.Errorf("packet %d: seq %d, want %d", i, p.SequenceNumber, want)
		}
		if p.Extension || len(p.Extensions) != 0 {
			t.Errorf("packet %d kept the sender's header extensions", i)
		}
	}
	// The last old packet went out at now+66ms with ts 9000; the new source
	// starts 434 ms later on the 90 kHz clock.
	wantTS := uint32(9000 + 434*90)
	if got[3].Timestamp != wantTS || got[4].Timestamp != wantTS+3000 {
		t.Errorf("new source timestamps %d, %d; want %d, %d", got[3].Timestamp, got[4].Timestamp, wantTS, wantTS+3000)
	}

	// The receiver reconnects (page reload): the same owner waits for a
	// keyframe again, numbering still continuous.
	f.restart()
	if v := f.forward(2, pkt(99, 40003, 1<<31+6010, vp8Delta), swapAt); v != waitingForKeyframe {
		t.Fatalf("after restart, delta: %v", v)
	}
	if v := f.forward(2, pkt(99, 40004, 1<<31+9010, vp8Key), swapAt.Add(time.Second)); v != sent {
		t.Fatalf("after restart, key: %v", v)
	}
	if p := out.pkts[5]; p.SequenceNumber != 106 {
		t.Errorf("after restart: seq %d, want 106", p.SequenceNumber)
	}
	f.release(2)
	if v := f.forward(2, pkt(99, 40005, 1<<31+9010, vp8Key), swapAt); v != stale {
		t.Fatalf("after release: %v, want stale", v)
	}
}

// fakeBrowser is a pion PeerConnection standing in for the page: it sends the
// test clips as camera and microphone and records what it receives.
type fakeBrowser struct {
	pc        *webrtc.PeerConnection
	mu        sync.Mutex
	video     []rtp.Packet
	audio     int
	videoSSRC map[uint32]bool
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

func newFakeBrowser(t *testing.T, eng *Engine, b *Bridge) *fakeBrowser {
	t.Helper()
	pc, err := eng.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fb := &fakeBrowser{pc: pc, cancel: cancel, videoSSRC: map[uint32]bool{}}
	t.Cleanup(fb.close)
	for _, src := range []struct {
		codec webrtc.RTPCodecCapability
		s     Source
	}{{vp8Codec, IVFSource{Path: clipIVF}}, {opusCodec, OggSource{Path: clipOgg}}} {
		track, err := webrtc.NewTrackLocalStaticSample(src.codec, "cam", "browser")
		if err != nil {
			t.Fatal(err)
		}
		sender, err := pc.AddTrack(track)
		if err != nil {
			t.Fatal(err)
		}
		fb.wg.Add(2)
		go func() { defer fb.wg.Done(); _ = src.s.Run(ctx, track) }()
		go func() { defer fb.wg.Done(); drainRTCP(sender, nil) }()
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			fb.mu.Lock()
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				fb.video = append(fb.video, *p)
				fb.videoSSRC[p.SSRC] = true
			} else {
				fb.audio++
			}
			fb.mu.Unlock()
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	answer, err := b.Connect(ctx2, pc.LocalDescription().SDP)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	return fb
}

func (fb *fakeBrowser) close() {
	fb.cancel()
	_ = fb.pc.Close()
	fb.wg.Wait()
}

func (fb *fakeBrowser) counts() (video, audio int) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return len(fb.video), fb.audio
}

// bridgedCall starts a call between a node side whose media is the bridge
// (A) and a stranger playing the clips (B).
func bridgedCall(t *testing.T, eng *Engine, br *Bridge) (a, b *peer, feed *Feed) {
	t.Helper()
	camera, mic := br.Tracks()
	var aPeer *peer
	feed = br.NewFeed(func() { aPeer.s.RequestKeyframe() })
	a, b = startCall(t, eng, eng,
		SessionConfig{VideoRTP: camera, AudioRTP: mic, OnRTP: feed.WriteRTP, OnKeyframeRequest: br.RequestKeyframe},
		SessionConfig{VideoFile: clipIVF, AudioFile: clipOgg})
	aPeer = a
	return a, b, feed
}

// TestBridge carries a browser's media through the bridge to a stranger and
// the stranger's back, swaps strangers with no gap in the browser's stream,
// and survives a page reload.
func TestBridge(t *testing.T) {
	eng := newTestEngine(t, nil)
	br, err := NewBridge(BridgeConfig{LoopbackOnly: true, Logger: testLogger(t).With("peer", "bridge")})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	fb := newFakeBrowser(t, eng, br)
	waitFor(t, 10*time.Second, "the browser to connect", func() bool { return br.Stats().Connected })

	a, b, feed := bridgedCall(t, eng, br)
	a.waitState(t, StateConnected, 10*time.Second)
	waitFor(t, 10*time.Second, "the browser's camera to reach the stranger", func() bool {
		st := b.s.Stats()
		return st.VideoFramesReceived >= 10 && st.AudioPacketsReceived >= 10
	})
	waitFor(t, 10*time.Second, "the stranger's media to reach the browser", func() bool {
		v, au := fb.counts()
		return v >= 20 && au >= 20
	})
	fb.mu.Lock()
	first := fb.video[0]
	fb.mu.Unlock()
	if !isVP8KeyframePacket(&first) {
		t.Error("the browser's video did not start with a keyframe")
	}

	// Next: hang up, a new stranger.
	before, _ := fb.counts()
	feed.Close()
	a.shutdown()
	b.shutdown()
	a2, b2, _ := bridgedCall(t, eng, br)
	waitFor(t, 10*time.Second, "the second stranger's media to reach the browser", func() bool {
		v, _ := fb.counts()
		return v >= before+20 && b2.s.Stats().VideoFramesReceived >= 5
	})
	fb.mu.Lock()
	vid := append([]rtp.Packet(nil), fb.video...)
	nSSRC := len(fb.videoSSRC)
	fb.mu.Unlock()
	if nSSRC != 1 {
		t.Errorf("the browser saw %d video SSRCs, want 1", nSSRC)
	}
	gaps := 0
	for i := 1; i < len(vid); i++ {
		if d := vid[i].SequenceNumber - vid[i-1].SequenceNumber; d != 1 && int16(d) > 0 {
			gaps++
			t.Logf("gap at %d: %d -> %d", i, vid[i-1].SequenceNumber, vid[i].SequenceNumber)
		}
	}
	if gaps > 0 {
		t.Errorf("%d gaps in the browser's video numbering across the swap", gaps)
	}
	if !isVP8KeyframePacket(&vid[before]) {
		t.Error("the second stranger's video did not start with a keyframe")
	}

	// Reload: a new page connection replaces the old one.
	fb2 := newFakeBrowser(t, eng, br)
	waitFor(t, 10*time.Second, "the reloaded page to get video", func() bool {
		v, au := fb2.counts()
		return v >= 10 && au >= 10
	})
	waitFor(t, 10*time.Second, "the old page connection to close", func() bool {
		return fb.pc.ConnectionState() == webrtc.PeerConnectionStateClosed ||
			fb.pc.ConnectionState() == webrtc.PeerConnectionStateFailed ||
			fb.pc.ConnectionState() == webrtc.PeerConnectionStateDisconnected
	})
	if st := br.Stats(); st.Browsers != 2 || st.VideoFromBrowser == 0 || st.VideoToBrowser == 0 {
		t.Errorf("bridge stats %+v", st)
	}
	a2.shutdown()
	b2.shutdown()
	fb.close()
	fb2.close()
	if err := br.Close(); err != nil {
		t.Logf("bridge close: %v", err)
	}
	checkNoLeaks(t, a.s, b.s, a2.s, b2.s)
}

// vp8WithPID is a VP8 payload with a 15-bit picture id and TL0PICIDX.
func vp8WithPID(pid uint16, tl0 byte, key bool) []byte {
	first := byte(0x01) // interframe
	if key {
		first = 0x00
	}
	return []byte{0x90, 0xc0, 0x80 | byte(pid>>8), byte(pid), tl0, first, 0x9d, 0x01, 0x2a}
}

func pidOf(t *testing.T, p rtp.Packet) (uint16, byte) {
	t.Helper()
	pid, n, tl0, _, ok := vp8Fields(p.Payload)
	if !ok || n != 2 || tl0 < 0 {
		t.Fatalf("no 15-bit picture id in % x", p.Payload)
	}
	return uint16(p.Payload[pid]&0x7f)<<8 | uint16(p.Payload[pid+1]), p.Payload[tl0]
}

// TestForwarderPictureIDs: a new source's VP8 picture ids and TL0PICIDX
// continue the old ones (a receiver would otherwise drop its frames as
// already decoded), and the caller's payload is left alone.
func TestForwarderPictureIDs(t *testing.T) {
	var out packetLog
	f := newForwarder(&out, true, 90000)
	now := time.Unix(1000, 0)
	f.take(1)
	in := []*rtp.Packet{pkt(1, 10, 0, vp8WithPID(32000, 7, true)), pkt(1, 11, 3000, vp8WithPID(32767, 8, false))}
	for _, p := range in {
		f.forward(1, p, now)
	}
	f.take(2)
	second := pkt(2, 500, 90, vp8WithPID(3, 200, true))
	f.forward(2, second, now.Add(time.Second))
	f.forward(2, pkt(2, 501, 3090, vp8WithPID(4, 201, false)), now.Add(time.Second))
	want := []struct {
		pid uint16
		tl0 byte
	}{{32000, 7}, {32767, 8}, {0, 9}, {1, 10}} // 15-bit wrap after 32767
	for i, w := range want {
		if pid, tl0 := pidOf(t, out.pkts[i]); pid != w.pid || tl0 != w.tl0 {
			t.Errorf("packet %d: picture id %d, TL0PICIDX %d; want %d, %d", i, pid, tl0, w.pid, w.tl0)
		}
	}
	if pid, _ := pidOf(t, *second); pid != 3 {
		t.Errorf("the caller's payload was changed: picture id %d", pid)
	}
	if _, _, _, _, ok := vp8Fields([]byte{0x90, 0x80}); ok {
		t.Error("truncated descriptor accepted")
	}
}
