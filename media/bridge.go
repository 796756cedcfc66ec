package media

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// keyframeInterval bounds how often the bridge passes on keyframe requests in
// either direction, so a burst of PLIs becomes one.
const keyframeInterval = 200 * time.Millisecond

// BridgeConfig configures a Bridge.
type BridgeConfig struct {
	// LoopbackOnly gathers loopback candidates only. A browser then needs
	// --allow-loopback-in-peer-connection (tests). Otherwise the bridge also
	// offers host candidates on every local IPv4 interface, which a browser
	// on the same machine reaches without flags. There is never a STUN or
	// TURN server and never mDNS: the browser and the node share a machine.
	LoopbackOnly bool
	// Logger gets the bridge's logs and pion's; nil means slog.Default().
	Logger *slog.Logger
}

// BridgeStats are a bridge's counters.
type BridgeStats struct {
	// Connected: a browser's PeerConnection is up.
	Connected bool
	// Browsers counts the browser connections made (one per page load).
	Browsers uint64
	// From the browser (sent on to the partner), and to the browser (from the
	// partner): RTP packets of video and audio.
	VideoFromBrowser, AudioFromBrowser uint64
	VideoToBrowser, AudioToBrowser     uint64
	// Keyframe requests passed on: from the partner to the browser, and from
	// the browser (or a feed switch) to the partner.
	KeyframesAskedOfBrowser, KeyframesAskedOfPartner uint64
}

// Bridge carries media between the user's browser and the calls of a node,
// with no transcoding. The browser holds one PeerConnection to the bridge
// (Connect), over loopback, for as long as the page is open. Its camera and
// microphone arrive as RTP and are forwarded to the tracks every call session
// sends (Tracks); the current partner's RTP (a Feed) is forwarded to the
// browser. Sequence numbers and timestamps are rewritten so that each side
// sees one continuous stream across partners (Next) and page reloads, and the
// video of a new source starts at a keyframe; keyframe requests (PLI, FIR)
// travel on in both directions.
type Bridge struct {
	api *webrtc.API
	log *slog.Logger

	// To the partner: the browser's camera and microphone, sent by every call.
	camera, mic *webrtc.TrackLocalStaticRTP
	// To the browser: the partner's video and audio.
	video, audio *webrtc.TrackLocalStaticRTP

	up   [2]*forwarder // browser -> partner: video, audio; owner: browser connection
	down [2]*forwarder // partner -> browser: video, audio; owner: feed

	mu         sync.Mutex
	pc         *webrtc.PeerConnection
	gen        uint64 // counts browser connections; readers of older ones stop forwarding
	browserVid uint32 // SSRC of the browser's video, 0 = none yet
	feed       *Feed
	feeds      uint64 // feed ids
	closed     bool
	wg         sync.WaitGroup

	askBrowser, askPartner throttle

	connected                             atomic.Bool
	nBrowsers, askedBrowser, askedPartner atomic.Uint64
	nVideoUp, nAudioUp                    atomic.Uint64
	nVideoDown, nAudioDown                atomic.Uint64
}

// NewBridge makes a bridge with no browser connected yet. It has its own
// pion API: loopback (and local host) candidates only, independent of the
// engine's ICE settings for calls.
func NewBridge(cfg BridgeConfig) (*Bridge, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	se := webrtc.SettingEngine{LoggerFactory: pionLoggerFactory{log: log}}
	se.SetICETimeouts(2*time.Second, 3*time.Second, 500*time.Millisecond)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if cfg.LoopbackOnly {
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		if names := loopbackInterfaces(); len(names) > 0 {
			se.SetInterfaceFilter(func(name string) bool { return names[name] })
		}
	}
	api, err := newAPI(se, true)
	if err != nil {
		return nil, err
	}
	b := &Bridge{api: api, log: log}
	b.askBrowser.every, b.askPartner.every = keyframeInterval, keyframeInterval
	for _, t := range []struct {
		dst  **webrtc.TrackLocalStaticRTP
		kind webrtc.RTPCodecType
		id   string
	}{
		{&b.camera, webrtc.RTPCodecTypeVideo, "camera"},
		{&b.mic, webrtc.RTPCodecTypeAudio, "microphone"},
		{&b.video, webrtc.RTPCodecTypeVideo, "stranger-video"},
		{&b.audio, webrtc.RTPCodecTypeAudio, "stranger-audio"},
	} {
		if *t.dst, err = newRTPTrack(t.kind, t.id); err != nil {
			return nil, err
		}
	}
	b.up = [2]*forwarder{newForwarder(b.camera, true, vp8Codec.ClockRate), newForwarder(b.mic, false, opusCodec.ClockRate)}
	b.down = [2]*forwarder{newForwarder(b.video, true, vp8Codec.ClockRate), newForwarder(b.audio, false, opusCodec.ClockRate)}
	return b, nil
}

// Tracks are the browser's camera and microphone as tracks for the calls
// (SessionConfig.VideoRTP and AudioRTP). They stay the same for the bridge's
// life, across browser connections.
func (b *Bridge) Tracks() (video, audio *webrtc.TrackLocalStaticRTP) {
	return b.camera, b.mic
}

// Connect answers a browser's offer (SDP with its candidates gathered) and
// returns the answer, with the bridge's candidates in it. The browser's
// previous connection, if any, is closed: one page, one connection. The offer
// should carry one video and one audio transceiver, sendrecv (or recvonly
// without a camera or microphone).
func (b *Bridge) Connect(ctx context.Context, offer string) (string, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return "", ErrClosed
	}
	pc, err := b.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", fmt.Errorf("media: bridge peer connection: %w", err)
	}
	fail := func(err error) (string, error) {
		_ = pc.Close()
		return "", err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(fmt.Errorf("%w: browser offer: %w", ErrMalformed, err))
	}
	vs, err := pc.AddTrack(b.video)
	if err != nil {
		return fail(fmt.Errorf("media: bridge video track: %w", err))
	}
	as, err := pc.AddTrack(b.audio)
	if err != nil {
		return fail(fmt.Errorf("media: bridge audio track: %w", err))
	}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fail(ErrClosed)
	}
	b.gen++
	gen := b.gen
	old := b.pc
	b.pc, b.browserVid = pc, 0
	b.wg.Add(2)
	b.mu.Unlock()
	b.nBrowsers.Add(1)
	for _, f := range b.up {
		f.take(gen)
	}
	if old != nil {
		b.closePC(old)
	}

	go func() { defer b.wg.Done(); b.readRTCP(vs, true) }()
	go func() { defer b.wg.Done(); b.readRTCP(as, false) }()
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		b.mu.Lock()
		ok := !b.closed && b.gen == gen
		if ok {
			b.wg.Add(1)
		}
		b.mu.Unlock()
		if ok {
			go func() { defer b.wg.Done(); b.readBrowser(gen, t) }()
		}
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		b.log.Debug("browser connection", "state", st.String())
		b.mu.Lock()
		current := b.pc == pc
		b.mu.Unlock()
		if !current {
			return
		}
		switch st {
		case webrtc.PeerConnectionStateConnected:
			b.connected.Store(true)
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			b.connected.Store(false)
			b.mu.Lock()
			if b.pc == pc {
				b.pc = nil
			}
			b.mu.Unlock()
			b.closePC(pc)
		}
	})

	// The new connection is a new stream for the browser: its video starts
	// at a keyframe, which the partner is asked for.
	for _, f := range b.down {
		f.restart()
	}
	b.askPartnerForKeyframe()

	drop := func(err error) (string, error) {
		b.mu.Lock()
		if b.pc == pc {
			b.pc = nil
		}
		b.mu.Unlock()
		b.closePC(pc)
		return "", err
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return drop(fmt.Errorf("media: bridge answer: %w", err))
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return drop(fmt.Errorf("media: bridge answer: %w", err))
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return drop(ctx.Err())
	}
	return pc.LocalDescription().SDP, nil
}

// closePC closes a browser connection off the caller's goroutine (pion's
// callbacks may be the caller).
func (b *Bridge) closePC(pc *webrtc.PeerConnection) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = pc.Close()
		return
	}
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		_ = pc.Close()
	}()
}

// readBrowser forwards one of the browser's tracks to the calls until the
// track ends or a newer browser connection replaces this one.
func (b *Bridge) readBrowser(gen uint64, t *webrtc.TrackRemote) {
	mime := t.Codec().MimeType
	video := strings.EqualFold(mime, vp8Codec.MimeType)
	if !video && !strings.EqualFold(mime, opusCodec.MimeType) {
		b.log.Debug("browser track ignored", "codec", mime)
		return
	}
	f, counter := b.up[1], &b.nAudioUp
	if video {
		f, counter = b.up[0], &b.nVideoUp
		b.mu.Lock()
		if b.gen == gen {
			b.browserVid = uint32(t.SSRC())
		}
		b.mu.Unlock()
		b.askBrowserForKeyframe()
	}
	for {
		p, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		switch f.forward(gen, p, time.Now()) {
		case sent:
			counter.Add(1)
		case waitingForKeyframe:
			b.askBrowserForKeyframe()
		case stale:
			return
		}
	}
}

// readRTCP reads the RTCP for one of the browser's receiving tracks and
// passes the browser's keyframe requests on to the partner.
func (b *Bridge) readRTCP(sender *webrtc.RTPSender, video bool) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		if video && wantsKeyframe(pkts) {
			b.askPartnerForKeyframe()
		}
	}
}

// RequestKeyframe asks the browser for a video keyframe: the partner's
// receiver lost the picture (wire it to SessionConfig.OnKeyframeRequest).
// Requests closer together than keyframeInterval are merged.
func (b *Bridge) RequestKeyframe() { b.askBrowserForKeyframe() }

func (b *Bridge) askBrowserForKeyframe() {
	b.mu.Lock()
	pc, ssrc := b.pc, b.browserVid
	b.mu.Unlock()
	if pc == nil || ssrc == 0 || !b.askBrowser.allow(time.Now()) {
		return
	}
	b.askedBrowser.Add(1)
	if err := pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
		b.log.Debug("PLI to browser failed", "err", err)
	}
}

func (b *Bridge) askPartnerForKeyframe() {
	b.mu.Lock()
	f := b.feed
	b.mu.Unlock()
	if f == nil || f.ask == nil || !b.askPartner.allow(time.Now()) {
		return
	}
	b.askedPartner.Add(1)
	f.ask()
}

// A Feed is one partner's media on its way to the browser. Only the newest
// feed reaches the browser; an older one is silently dropped.
type Feed struct {
	b   *Bridge
	id  uint64
	ask func()
}

// NewFeed makes the feed of a new partner the one the browser sees and hears
// (Next swaps partners this way, without renegotiating with the browser).
// askKeyframe asks the partner for a video keyframe (Session.RequestKeyframe);
// the bridge calls it when the browser asks, and while it waits for the first
// keyframe of the feed. Wire Feed.WriteRTP to SessionConfig.OnRTP.
func (b *Bridge) NewFeed(askKeyframe func()) *Feed {
	b.mu.Lock()
	b.feeds++
	f := &Feed{b: b, id: b.feeds, ask: askKeyframe}
	b.feed = f
	b.mu.Unlock()
	for _, fw := range b.down {
		fw.take(f.id)
	}
	return f
}

// WriteRTP forwards one of the partner's packets to the browser, if this is
// the current feed. It does not keep p.
func (f *Feed) WriteRTP(kind webrtc.RTPCodecType, p *rtp.Packet) {
	fw, counter := f.b.down[1], &f.b.nAudioDown
	if kind == webrtc.RTPCodecTypeVideo {
		fw, counter = f.b.down[0], &f.b.nVideoDown
	}
	switch fw.forward(f.id, p, time.Now()) {
	case sent:
		counter.Add(1)
	case waitingForKeyframe:
		f.b.askPartnerForKeyframe()
	}
}

// Close ends the feed: the browser gets nothing more from it. Idempotent.
func (f *Feed) Close() {
	f.b.mu.Lock()
	if f.b.feed == f {
		f.b.feed = nil
	}
	f.b.mu.Unlock()
	for _, fw := range f.b.down {
		fw.release(f.id)
	}
}

// Stats returns the bridge's counters.
func (b *Bridge) Stats() BridgeStats {
	return BridgeStats{
		Connected:               b.connected.Load(),
		Browsers:                b.nBrowsers.Load(),
		VideoFromBrowser:        b.nVideoUp.Load(),
		AudioFromBrowser:        b.nAudioUp.Load(),
		VideoToBrowser:          b.nVideoDown.Load(),
		AudioToBrowser:          b.nAudioDown.Load(),
		KeyframesAskedOfBrowser: b.askedBrowser.Load(),
		KeyframesAskedOfPartner: b.askedPartner.Load(),
	}
}

// Close closes the browser's connection and waits for the bridge's
// goroutines. Feeds stay harmless to write to. Idempotent.
func (b *Bridge) Close() error {
	b.mu.Lock()
	b.closed = true
	pc := b.pc
	b.pc, b.feed = nil, nil
	b.mu.Unlock()
	var err error
	if pc != nil {
		err = pc.Close()
	}
	b.wg.Wait()
	b.connected.Store(false)
	return err
}

// NewRTPTrack makes a VP8 (video) or Opus (audio) track that forwards RTP, for
// SessionConfig.VideoRTP and AudioRTP; write to it with Forward.
func NewRTPTrack(kind webrtc.RTPCodecType, id string) (*webrtc.TrackLocalStaticRTP, error) {
	return newRTPTrack(kind, id)
}

func newRTPTrack(kind webrtc.RTPCodecType, id string) (*webrtc.TrackLocalStaticRTP, error) {
	codec := opusCodec
	if kind == webrtc.RTPCodecTypeVideo {
		codec = vp8Codec
	}
	t, err := webrtc.NewTrackLocalStaticRTP(codec, id, streamID)
	if err != nil {
		return nil, fmt.Errorf("media: %s track: %w", kind, err)
	}
	return t, nil
}

// Forward writes a copy of p to t, without p's header extensions and padding
// (they belong to the connection p came in on). Packets without payload are
// skipped.
func Forward(t *webrtc.TrackLocalStaticRTP, p *rtp.Packet) error {
	if len(p.Payload) == 0 {
		return nil
	}
	out := *p
	stripHeader(&out)
	return t.WriteRTP(&out)
}

func stripHeader(p *rtp.Packet) {
	p.Extension, p.Extensions, p.ExtensionProfile = false, nil, 0
	p.Padding, p.Header.PaddingSize, p.PaddingSize = false, 0, 0
}

// throttle lets an action through at most once per interval.
type throttle struct {
	mu    sync.Mutex
	every time.Duration
	last  time.Time
}

func (t *throttle) allow(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.last.IsZero() && now.Sub(t.last) < t.every {
		return false
	}
	t.last = now
	return true
}

// verdict is what a forwarder did with a packet.
type verdict int

const (
	sent verdict = iota
	skipped
	waitingForKeyframe // video of a new source before its first keyframe
	stale              // not from the forwarder's current owner
)

// forwarder writes the packets of one owner at a time (a browser connection,
// a feed) to a track, rewriting sequence numbers and timestamps so that the
// receiver sees one stream whatever the owner and the source SSRC: when the
// source changes, its numbering continues from the last packet sent, its
// timestamps advanced by the wall-clock time since. A new source of video
// starts at a keyframe.
type forwarder struct {
	track rtpWriter
	video bool
	clock float64

	mu      sync.Mutex
	owner   uint64
	fresh   bool // the next packet starts a new source
	started bool // a packet has been sent
	src     uint32
	seqOff  uint16
	tsOff   uint32
	lastSeq uint16
	lastTS  uint32
	lastAt  time.Time
	vp8     vp8Munger
}

// vp8Munger keeps the VP8 picture ids (and TL0PICIDX, KEYIDX) of a forwarded
// stream continuous across sources, as the sequence numbers are: a receiver
// (libwebrtc) finds frame references and drops frames it takes for already
// decoded by picture id, so a new source whose ids restart below the old
// one's would stall until they caught up.
type vp8Munger struct {
	started                   bool
	pidOff, lastPID           uint16
	tl0Off, lastTL0           uint8
	keyOff, lastKey           uint8
	havePID, haveTL0, haveKey bool
}

// vp8Fields locates the rewritable fields of a VP8 payload descriptor (RFC
// 7741 section 4.2): the picture id (1 or 2 bytes), TL0PICIDX and KEYIDX;
// -1 where absent. ok is false for a truncated descriptor.
func vp8Fields(b []byte) (pid, pidLen, tl0, key int, ok bool) {
	pid, tl0, key = -1, -1, -1
	if len(b) < 1 {
		return pid, 0, tl0, key, false
	}
	if b[0]&0x80 == 0 { // no extension byte
		return pid, 0, tl0, key, true
	}
	if len(b) < 2 {
		return pid, 0, tl0, key, false
	}
	x, i := b[1], 2
	if x&0x80 != 0 { // I: picture id
		if len(b) <= i {
			return -1, 0, -1, -1, false
		}
		pid, pidLen = i, 1
		if b[i]&0x80 != 0 { // M: 15 bits
			pidLen = 2
		}
		i += pidLen
	}
	if x&0x40 != 0 { // L: TL0PICIDX
		tl0 = i
		i++
	}
	if x&0x30 != 0 { // T or K: TID/Y/KEYIDX
		if x&0x10 != 0 {
			key = i
		}
		i++
	}
	if len(b) < i {
		return -1, 0, -1, -1, false
	}
	return pid, pidLen, tl0, key, true
}

// munge returns payload with its picture id, TL0PICIDX and KEYIDX shifted
// so that a new source continues where the last left off. It copies the
// payload before changing it (the caller's packet is shared).
func (m *vp8Munger) munge(payload []byte, newSource bool) []byte {
	pid, pidLen, tl0, key, ok := vp8Fields(payload)
	if !ok || (pid < 0 && tl0 < 0 && key < 0) {
		return payload
	}
	var inPID uint16
	if pidLen == 1 {
		inPID = uint16(payload[pid] & 0x7f)
	} else if pidLen == 2 {
		inPID = uint16(payload[pid]&0x7f)<<8 | uint16(payload[pid+1])
	}
	if newSource {
		m.pidOff, m.tl0Off, m.keyOff = 0, 0, 0
		if m.started {
			if pid >= 0 && m.havePID {
				m.pidOff = m.lastPID + 1 - inPID
			}
			if tl0 >= 0 && m.haveTL0 {
				m.tl0Off = m.lastTL0 + 1 - payload[tl0]
			}
			if key >= 0 && m.haveKey {
				m.keyOff = m.lastKey + 1 - payload[key]&0x1f
			}
		}
		m.started = true
	}
	out := append([]byte(nil), payload...)
	if pid >= 0 {
		v := (inPID + m.pidOff) & 0x7fff
		if pidLen == 1 {
			v &= 0x7f
			out[pid] = byte(v)
		} else {
			out[pid], out[pid+1] = 0x80|byte(v>>8), byte(v)
		}
		if !m.havePID || int16((v-m.lastPID)<<1) > 0 { // newer, modulo 15 bits
			m.lastPID, m.havePID = v, true
		}
	}
	if tl0 >= 0 {
		out[tl0] = payload[tl0] + m.tl0Off
		if !m.haveTL0 || int8(out[tl0]-m.lastTL0) > 0 {
			m.lastTL0, m.haveTL0 = out[tl0], true
		}
	}
	if key >= 0 {
		k := (payload[key]&0x1f + m.keyOff) & 0x1f
		out[key] = payload[key]&0xe0 | k
		m.lastKey, m.haveKey = k, true
	}
	return out
}

// rtpWriter takes RTP packets; *webrtc.TrackLocalStaticRTP is one.
type rtpWriter interface {
	WriteRTP(*rtp.Packet) error
}

func newForwarder(w rtpWriter, video bool, clockRate uint32) *forwarder {
	return &forwarder{track: w, video: video, clock: float64(clockRate), fresh: true}
}

// take makes owner the one whose packets go through, starting a new source.
func (f *forwarder) take(owner uint64) {
	f.mu.Lock()
	f.owner, f.fresh = owner, true
	f.mu.Unlock()
}

// release drops owner if it is the current one.
func (f *forwarder) release(owner uint64) {
	f.mu.Lock()
	if f.owner == owner {
		f.owner, f.fresh = 0, true
	}
	f.mu.Unlock()
}

// restart starts a new source for the same owner (the receiver is new).
func (f *forwarder) restart() {
	f.mu.Lock()
	f.fresh = true
	f.mu.Unlock()
}

func (f *forwarder) forward(owner uint64, p *rtp.Packet, now time.Time) verdict {
	if len(p.Payload) == 0 {
		return skipped // padding
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if owner == 0 || owner != f.owner {
		return stale
	}
	newSource := f.fresh || p.SSRC != f.src
	if newSource {
		if f.video && !isVP8KeyframePacket(p) {
			return waitingForKeyframe
		}
		f.fresh, f.src = false, p.SSRC
		if f.started {
			gap := uint32(now.Sub(f.lastAt).Seconds() * f.clock)
			gap = max(gap, uint32(f.clock/1000)) // at least 1 ms: a new frame
			f.seqOff = f.lastSeq + 1 - p.SequenceNumber
			f.tsOff = f.lastTS + gap - p.Timestamp
		} else {
			f.seqOff, f.tsOff = 0, 0
		}
	}
	out := *p
	stripHeader(&out)
	out.SequenceNumber += f.seqOff
	out.Timestamp += f.tsOff
	if f.video {
		out.Payload = f.vp8.munge(p.Payload, newSource)
	}
	if !f.started || int16(out.SequenceNumber-f.lastSeq) > 0 {
		f.lastSeq, f.lastTS, f.lastAt = out.SequenceNumber, out.Timestamp, now
	}
	f.started = true
	_ = f.track.WriteRTP(&out) // no receiver bound yet is no error
	return sent
}
