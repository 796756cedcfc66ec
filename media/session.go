package media

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	pmedia "github.com/pion/webrtc/v4/pkg/media"
)

const (
	// ChatLabel is the label of the chat data channel.
	ChatLabel = "chat"
	// MaxChatSize bounds one chat message, in bytes. Longer incoming messages
	// are dropped.
	MaxChatSize = 4 << 10

	// maxEarlyCandidates bounds remote candidates queued before the remote
	// description arrives.
	maxEarlyCandidates = 64
	// pliInterval: while no VP8 keyframe has arrived, ask for one this often.
	pliInterval = time.Second
	// streamID groups the local tracks into one media stream.
	streamID = "serendip"
)

// The codecs of the local tracks, as Engine registers them.
var (
	vp8Codec  = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	opusCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
)

// SessionConfig configures one call.
type SessionConfig struct {
	// Role is this side of the offer/answer exchange; the match fixes it.
	Role Role
	// Send delivers a signal to the partner (the node implements it over its
	// signal stream and fills in MatchID). Required. The session calls it from
	// one goroutine at a time, never with a lock held, offer or answer first and
	// then candidates in the order gathered. It should return promptly (use a
	// write deadline): Close waits for a Send in progress.
	Send func(Signal) error

	// VideoFile is an IVF VP8 file looped as the camera ("" = no video sent).
	// VideoSource, if set, is used instead.
	VideoFile   string
	VideoSource Source
	// AudioFile is an Ogg Opus file looped as the microphone ("" = no audio
	// sent). AudioSource, if set, is used instead.
	AudioFile   string
	AudioSource Source
	// VideoRTP and AudioRTP, if set and there is no Source (or file) of that
	// kind, are sent as they are: RTP written to them elsewhere (the browser
	// bridge, a mirror) reaches the partner with no transcoding. Many sessions
	// may share one track; each rewrites SSRC and payload type for itself.
	VideoRTP, AudioRTP *webrtc.TrackLocalStaticRTP

	// RecordDir, if set, receives the partner's media as
	// RecordDir/RecordName.ivf (VP8) and RecordDir/RecordName.ogg (Opus). A file
	// is created when the partner's track arrives and finalised by Close.
	// RecordDir is created if missing; RecordName must be a plain file name.
	RecordDir  string
	RecordName string

	// OnState is called when the session's State changes (see State). OnChat is
	// called with each chat message from the partner. Both run on the
	// session's own callback goroutine, in order, one at a time, never with a
	// session lock held; they may call any Session method, Close included.
	// OnState(StateClosed) is always the last callback.
	OnState func(State)
	OnChat  func(text string)
	// OnMessage, if set, gets the partner's typing and hello messages (chat
	// text goes to OnChat), on the same goroutine as OnState and OnChat.
	OnMessage func(Message)
	// Interests are sent to the partner in a hello message as soon as the
	// chat channel opens (at most MaxInterests of MaxInterestSize bytes).
	Interests []string

	// OnRTP, if set, gets every RTP packet of the partner's VP8 and Opus
	// tracks, on that track's reading goroutine, in order. It must return
	// promptly and must not keep p.
	OnRTP func(kind webrtc.RTPCodecType, p *rtp.Packet)
	// OnKeyframeRequest, if set, is called when the partner asks for a video
	// keyframe (PLI or FIR) on our video track. It runs on the sender's RTCP
	// goroutine and must return promptly. File sources need none: they send a
	// keyframe every second.
	OnKeyframeRequest func()

	// Logger gets the session's logs; nil means slog.Default().
	Logger *slog.Logger

	// TextOnly makes the chat channel the call's only channel from this
	// side: no video or audio track, sent or offered to receive (the
	// sources, files and forwarded tracks above must be unset). A partner's
	// offer of media is still answered receive-only.
	TextOnly bool
}

// Validate reports whether c is complete and consistent. It does not open the
// media files (NewSession checks them). Errors wrap ErrBadConfig.
func (c SessionConfig) Validate() error {
	switch {
	case c.Role != Offerer && c.Role != Answerer:
		return fmt.Errorf("%w: role %v", ErrBadConfig, c.Role)
	case c.Send == nil:
		return fmt.Errorf("%w: no Send", ErrBadConfig)
	case c.TextOnly && (c.VideoFile != "" || c.AudioFile != "" || c.VideoSource != nil || c.AudioSource != nil || c.VideoRTP != nil || c.AudioRTP != nil):
		return fmt.Errorf("%w: TextOnly with a video or audio source", ErrBadConfig)
	case c.RecordDir != "" && c.RecordName == "":
		return fmt.Errorf("%w: RecordDir without RecordName", ErrBadConfig)
	case c.RecordDir != "" && (c.RecordName == "." || c.RecordName == ".." ||
		strings.ContainsAny(c.RecordName, `/\`) || filepath.Base(c.RecordName) != c.RecordName):
		return fmt.Errorf("%w: RecordName %q is not a plain file name", ErrBadConfig, c.RecordName)
	}
	if err := (Message{Kind: MessageHello, Interests: c.Interests}).Validate(); err != nil {
		return fmt.Errorf("%w: interests: %w", ErrBadConfig, err)
	}
	return nil
}

// Stats are a session's counters.
type Stats struct {
	State State
	// Connected is true while the session is in StateConnected.
	Connected bool
	// ConnectedAt is when the session first connected (zero if never).
	ConnectedAt time.Time
	// FirstVideoAt is when the partner's first complete video frame arrived
	// (zero if none has).
	FirstVideoAt time.Time

	// Remote media: VP8 frames (RTP packets with the marker bit on the video
	// track), Opus packets, and RTP payload bytes of both tracks.
	VideoFramesReceived, AudioPacketsReceived, BytesReceived uint64
	// Local media: samples handed to the video and audio tracks.
	VideoFramesSent, AudioPacketsSent uint64
	// Chat messages sent and received.
	ChatSent, ChatReceived uint64
	// ChatDropped counts incoming chat messages dropped (too long, not text,
	// not UTF-8, or OnChat too far behind).
	ChatDropped uint64
}

type counters struct {
	videoIn, audioIn, bytesIn atomic.Uint64
	firstVideo                atomic.Int64 // unix nanoseconds; 0 = none yet
	videoOut, audioOut        atomic.Uint64
	chatOut, chatIn, chatDrop atomic.Uint64
}

// Session is one call: a PeerConnection with a VP8 and an Opus track each way
// (send and receive, or receive only when there is no source) and the chat
// data channel.
type Session struct {
	cfg    SessionConfig
	log    *slog.Logger
	pc     *webrtc.PeerConnection
	events *notifier
	stats  counters
	path   atomic.Value // string: see Path

	ctx    context.Context
	cancel context.CancelFunc

	connected     chan struct{} // closed on first connect; starts the sources
	connectedOnce sync.Once
	remoteVideo   atomic.Uint32 // SSRC of the partner's video track; 0 = none yet

	sigMu sync.Mutex // serialises Start and HandleSignal

	mu            sync.Mutex // guards what follows
	state         State
	closed        bool
	started       bool // offerer: Start called
	remoteSet     bool // remote description applied
	earlyRemote   []webrtc.ICECandidateInit
	localSent     bool     // offer/answer handed to Send
	heldLocal     []Signal // local candidates gathered before that
	outq          []Signal // for the send loop
	dc            *webrtc.DataChannel
	chatOpen      bool
	connectedAt   time.Time
	recording     map[string]bool // kind -> a recorder exists
	chatDropLogs  int
	outWake       chan struct{}
	wg            sync.WaitGroup
	running       atomic.Int32 // goroutines in wg, for tests
	closeOnce     sync.Once
	closeErr      error
	sendErrLogged bool
}

// NewSession creates a call session: the PeerConnection, its tracks (or
// receive-only transceivers) and the goroutines that will send media once
// connected. It checks the media files first. Nothing goes on the network until
// Start (offerer) or an offer (answerer).
func (e *Engine) NewSession(cfg SessionConfig) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.VideoSource == nil && cfg.VideoFile != "" {
		if err := CheckVideoFile(cfg.VideoFile); err != nil {
			return nil, err
		}
		cfg.VideoSource = IVFSource{Path: cfg.VideoFile}
	}
	if cfg.AudioSource == nil && cfg.AudioFile != "" {
		if err := CheckAudioFile(cfg.AudioFile); err != nil {
			return nil, err
		}
		cfg.AudioSource = OggSource{Path: cfg.AudioFile}
	}
	if cfg.RecordDir != "" {
		if err := os.MkdirAll(cfg.RecordDir, 0o750); err != nil {
			return nil, fmt.Errorf("%w: record dir: %w", ErrBadConfig, err)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("role", cfg.Role.String())

	pcfg, err := e.peerConfig()
	if err != nil {
		return nil, err
	}
	pc, err := e.api.NewPeerConnection(pcfg)
	if err != nil {
		return nil, fmt.Errorf("media: new peer connection: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{
		cfg:       cfg,
		log:       log,
		pc:        pc,
		events:    newNotifier(cfg.OnState, cfg.OnChat),
		ctx:       ctx,
		cancel:    cancel,
		connected: make(chan struct{}),
		recording: map[string]bool{},
		outWake:   make(chan struct{}, 1),
	}
	s.events.onMessage = cfg.OnMessage
	go s.events.run() // before anything can fail: Close waits for it
	type local struct {
		kind    webrtc.RTPCodecType
		codec   webrtc.RTPCodecCapability
		src     Source
		rtp     *webrtc.TrackLocalStaticRTP
		counter *atomic.Uint64
	}
	locals := []local{
		{webrtc.RTPCodecTypeVideo, vp8Codec, cfg.VideoSource, cfg.VideoRTP, &s.stats.videoOut},
		{webrtc.RTPCodecTypeAudio, opusCodec, cfg.AudioSource, cfg.AudioRTP, &s.stats.audioOut},
	}
	type starter struct {
		src   Source
		track *webrtc.TrackLocalStaticSample
		n     *atomic.Uint64
		kind  string
	}
	type rtcpReader struct {
		sender *webrtc.RTPSender
		video  bool
	}
	var senders []rtcpReader
	var starters []starter
	if cfg.TextOnly {
		locals = nil
	}
	for _, l := range locals {
		if l.src == nil && l.rtp != nil {
			sender, err := pc.AddTrack(l.rtp)
			if err != nil {
				return nil, s.abort(fmt.Errorf("media: add forwarded %s track: %w", l.kind, err))
			}
			senders = append(senders, rtcpReader{sender, l.kind == webrtc.RTPCodecTypeVideo})
			continue
		}
		if l.src == nil {
			if _, err := pc.AddTransceiverFromKind(l.kind, webrtc.RTPTransceiverInit{
				Direction: webrtc.RTPTransceiverDirectionRecvonly,
			}); err != nil {
				return nil, s.abort(fmt.Errorf("media: add %s transceiver: %w", l.kind, err))
			}
			continue
		}
		track, err := webrtc.NewTrackLocalStaticSample(l.codec, l.kind.String(), streamID)
		if err != nil {
			return nil, s.abort(fmt.Errorf("media: new %s track: %w", l.kind, err))
		}
		sender, err := pc.AddTrack(track)
		if err != nil {
			return nil, s.abort(fmt.Errorf("media: add %s track: %w", l.kind, err))
		}
		senders = append(senders, rtcpReader{sender, l.kind == webrtc.RTPCodecTypeVideo})
		starters = append(starters, starter{l.src, track, l.counter, l.kind.String()})
	}

	pc.OnICECandidate(s.onLocalCandidate)
	s.watchPath()
	pc.OnConnectionStateChange(s.onConnectionState)
	pc.OnICEConnectionStateChange(s.onICEState)
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		s.spawn(func() { s.readTrack(t) })
	})
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		s.mu.Lock()
		accept := dc.Label() == ChatLabel && s.dc == nil && !s.closed
		if accept {
			s.dc = dc
		}
		s.mu.Unlock()
		if !accept {
			s.log.Debug("refused data channel", "label", dc.Label())
			_ = dc.Close()
			return
		}
		s.setupChat(dc)
	})

	s.spawn(s.sendLoop)
	for _, r := range senders {
		var onKey func()
		if r.video {
			onKey = cfg.OnKeyframeRequest
		}
		s.spawn(func() { drainRTCP(r.sender, onKey) })
	}
	for _, st := range starters {
		s.spawn(func() { s.runSource(st.kind, st.src, st.track, st.n) })
	}
	return s, nil
}

// abort undoes a half-built session.
func (s *Session) abort(err error) error {
	_ = s.Close()
	return err
}

// spawn runs fn on a goroutine that Close waits for; after Close has begun it
// does nothing and reports false.
func (s *Session) spawn(fn func()) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.wg.Add(1)
	s.running.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer s.running.Add(-1)
		fn()
	}()
	return true
}

// Start begins the call. The offerer creates the chat data channel and the
// offer, applies it and Sends it (synchronously: a Send error is returned). The
// answerer has nothing to do until the offer arrives through HandleSignal;
// Start there does nothing (before or after the offer) and returns nil unless
// the session is closed. Errors: ErrAlreadyStarted, ErrClosed, or the failure
// to create or Send the offer (the session then fails).
func (s *Session) Start() error {
	offer, err := s.makeOffer()
	if err != nil || offer == nil {
		return err
	}
	return s.sendDescription(*offer)
}

// makeOffer does Start's work up to the Send; nil for the answerer.
func (s *Session) makeOffer() (*Signal, error) {
	s.sigMu.Lock()
	defer s.sigMu.Unlock()
	s.mu.Lock()
	closed, started := s.closed, s.started
	offerer := s.cfg.Role == Offerer
	if offerer {
		s.started = true
	}
	s.mu.Unlock()
	switch {
	case closed:
		return nil, ErrClosed
	case !offerer:
		return nil, nil
	case started:
		return nil, ErrAlreadyStarted
	}

	dc, err := s.pc.CreateDataChannel(ChatLabel, nil)
	if err != nil {
		return nil, fmt.Errorf("media: create chat channel: %w", err)
	}
	s.mu.Lock()
	s.dc = dc
	s.mu.Unlock()
	s.setupChat(dc)

	offer, err := s.pc.CreateOffer(nil)
	if err != nil {
		return nil, fmt.Errorf("media: create offer: %w", err)
	}
	if err := s.pc.SetLocalDescription(offer); err != nil {
		return nil, fmt.Errorf("media: set local offer: %w", err)
	}
	s.advance(StateConnecting)
	return &Signal{Kind: SignalOffer, SDP: offer.SDP}, nil
}

// sendDescription sends the offer or answer synchronously, then releases the
// local candidates gathered meanwhile to the send loop, so the partner always
// gets the description first. If Send fails the call cannot go on: the
// session fails and its candidates are never sent. No lock is held: Send may
// block or even call back into the session.
func (s *Session) sendDescription(sig Signal) error {
	if err := s.cfg.Send(sig); err != nil {
		s.fail("sending the " + sig.Kind.String() + " failed")
		return fmt.Errorf("media: send %s: %w", sig.Kind, err)
	}
	s.mu.Lock()
	s.localSent = true
	s.outq = append(s.outq, s.heldLocal...)
	s.heldLocal = nil
	s.mu.Unlock()
	s.wakeSender()
	return nil
}

// HandleSignal applies a signal from the partner: an offer (answerer: applies
// it, creates and Sends the answer), an answer (offerer), or a candidate
// (queued until the remote description is set; "" = end of candidates).
// Hello and bye are the node's business and are ignored. Errors wrap
// ErrUnexpectedSignal (wrong role or order), ErrMalformed (bad SDP or
// candidate), ErrTooLarge, ErrUnknownKind or ErrClosed; the node should end
// the call on any of them.
func (s *Session) HandleSignal(sig Signal) error {
	if err := sig.Validate(); err != nil {
		return err
	}
	answer, err := s.applySignal(sig)
	if err != nil || answer == nil {
		return err
	}
	return s.sendDescription(*answer)
}

// applySignal does HandleSignal's work up to the Send; it returns the answer
// to send, if any.
func (s *Session) applySignal(sig Signal) (*Signal, error) {
	s.sigMu.Lock()
	defer s.sigMu.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	switch sig.Kind {
	case SignalOffer:
		return s.handleOffer(sig.SDP)
	case SignalAnswer:
		return nil, s.handleAnswer(sig.SDP)
	case SignalCandidate:
		return nil, s.handleCandidate(sig.Candidate)
	default: // hello, bye
		return nil, nil
	}
}

func (s *Session) handleOffer(sdp string) (*Signal, error) {
	if s.cfg.Role != Answerer {
		return nil, fmt.Errorf("%w: offer received by the offerer", ErrUnexpectedSignal)
	}
	s.mu.Lock()
	again := s.remoteSet
	s.mu.Unlock()
	if again {
		return nil, fmt.Errorf("%w: second offer (renegotiation is not supported)", ErrUnexpectedSignal)
	}
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return nil, fmt.Errorf("%w: offer: %w", ErrMalformed, err)
	}
	s.advance(StateConnecting)
	s.applyEarlyCandidates()
	answer, err := s.pc.CreateAnswer(nil)
	if err != nil {
		return nil, fmt.Errorf("media: create answer: %w", err)
	}
	if err := s.pc.SetLocalDescription(answer); err != nil {
		return nil, fmt.Errorf("media: set local answer: %w", err)
	}
	return &Signal{Kind: SignalAnswer, SDP: answer.SDP}, nil
}

func (s *Session) handleAnswer(sdp string) error {
	if s.cfg.Role != Offerer {
		return fmt.Errorf("%w: answer received by the answerer", ErrUnexpectedSignal)
	}
	s.mu.Lock()
	started, again := s.started, s.remoteSet
	s.mu.Unlock()
	switch {
	case !started:
		return fmt.Errorf("%w: answer before Start", ErrUnexpectedSignal)
	case again:
		return fmt.Errorf("%w: second answer", ErrUnexpectedSignal)
	}
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		return fmt.Errorf("%w: answer: %w", ErrMalformed, err)
	}
	s.applyEarlyCandidates()
	return nil
}

func (s *Session) handleCandidate(js string) error {
	var c webrtc.ICECandidateInit
	if js != "" {
		if err := json.Unmarshal([]byte(js), &c); err != nil {
			return fmt.Errorf("%w: candidate: %w", ErrMalformed, err)
		}
	}
	s.mu.Lock()
	if !s.remoteSet {
		defer s.mu.Unlock()
		if len(s.earlyRemote) >= maxEarlyCandidates {
			return fmt.Errorf("%w: more than %d candidates before the remote description", ErrTooLarge, maxEarlyCandidates)
		}
		s.earlyRemote = append(s.earlyRemote, c)
		return nil
	}
	s.mu.Unlock()
	return s.addRemoteCandidate(c)
}

func (s *Session) addRemoteCandidate(c webrtc.ICECandidateInit) error {
	if err := s.pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%w: candidate %q: %w", ErrMalformed, c.Candidate, err)
	}
	return nil
}

// applyEarlyCandidates marks the remote description set and adds the
// candidates that came before it. A bad one is logged and skipped.
func (s *Session) applyEarlyCandidates() {
	s.mu.Lock()
	s.remoteSet = true
	early := s.earlyRemote
	s.earlyRemote = nil
	s.mu.Unlock()
	for _, c := range early {
		if err := s.addRemoteCandidate(c); err != nil {
			s.log.Debug("skipped early remote candidate", "err", err)
		}
	}
}

// onLocalCandidate trickles a gathered candidate (nil = gathering done) to the
// partner, after the offer or answer.
func (s *Session) onLocalCandidate(c *webrtc.ICECandidate) {
	sig := Signal{Kind: SignalCandidate}
	if c != nil {
		b, err := json.Marshal(c.ToJSON())
		if err != nil {
			s.log.Warn("cannot encode local candidate", "err", err)
			return
		}
		sig.Candidate = string(b)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if !s.localSent {
		s.heldLocal = append(s.heldLocal, sig)
		s.mu.Unlock()
		return
	}
	s.outq = append(s.outq, sig)
	s.mu.Unlock()
	s.wakeSender()
}

func (s *Session) wakeSender() {
	select {
	case s.outWake <- struct{}{}:
	default:
	}
}

// sendLoop hands queued candidates to Send, in order, one at a time.
func (s *Session) sendLoop() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.outWake:
		}
		for {
			s.mu.Lock()
			if s.closed || len(s.outq) == 0 {
				s.mu.Unlock()
				break
			}
			sig := s.outq[0]
			s.outq = s.outq[1:]
			s.mu.Unlock()
			if err := s.cfg.Send(sig); err != nil {
				s.onSendError(sig, err)
			}
		}
	}
}

// onSendError: before the call connects, losing signalling loses the call;
// after, a lost candidate does not matter.
func (s *Session) onSendError(sig Signal, err error) {
	s.mu.Lock()
	connectedYet := s.state >= StateConnected
	logIt := !s.sendErrLogged
	s.sendErrLogged = true
	s.mu.Unlock()
	if logIt {
		s.log.Debug("signal send failed", "kind", sig.Kind, "err", err)
	}
	if !connectedYet {
		s.fail("sending a candidate failed")
	}
}

func (s *Session) onConnectionState(st webrtc.PeerConnectionState) {
	s.log.Debug("peer connection state", "state", st.String())
	switch st {
	case webrtc.PeerConnectionStateConnecting:
		s.advance(StateConnecting)
	case webrtc.PeerConnectionStateConnected:
		s.mu.Lock()
		if s.connectedAt.IsZero() && !s.closed {
			s.connectedAt = time.Now()
		}
		s.mu.Unlock()
		s.advance(StateConnected)
		s.connectedOnce.Do(func() { close(s.connected) })
	case webrtc.PeerConnectionStateFailed:
		s.fail("peer connection failed")
	case webrtc.PeerConnectionStateClosed:
		s.fail("partner closed the connection")
	default:
	}
}

func (s *Session) onICEState(st webrtc.ICEConnectionState) {
	s.log.Debug("ICE state", "state", st.String())
	switch st {
	case webrtc.ICEConnectionStateFailed:
		s.fail("ICE failed: no traffic from the partner")
	case webrtc.ICEConnectionStateClosed:
		s.fail("ICE closed")
	default:
	}
}

// advance moves the state forward (never back) and queues OnState.
func (s *Session) advance(st State) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || st <= s.state {
		return false
	}
	s.state = st
	s.events.pushState(st)
	return true
}

func (s *Session) fail(reason string) {
	if s.advance(StateFailed) {
		s.log.Info("call failed", "reason", reason)
	}
}

func (s *Session) setupChat(dc *webrtc.DataChannel) {
	dc.OnOpen(func() {
		s.mu.Lock()
		s.chatOpen = true
		s.mu.Unlock()
		if err := s.sendMessage(Message{Kind: MessageHello, Interests: s.cfg.Interests}); err != nil {
			s.log.Debug("hello not sent", "err", err)
		}
	})
	dc.OnClose(func() {
		s.mu.Lock()
		s.chatOpen = false
		s.mu.Unlock()
	})
	dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		var why string
		m, err := ParseMessage(msg.Data)
		switch {
		case !msg.IsString:
			why = "binary message"
		case err != nil:
			why = err.Error()
		case m.Kind == MessageText:
			if !s.events.pushChat(m.Text) {
				why = "OnChat too far behind"
			} else {
				s.stats.chatIn.Add(1)
			}
		case !s.events.pushMessage(m):
			why = "OnMessage too far behind"
		}
		if why == "" {
			return
		}
		s.stats.chatDrop.Add(1)
		s.mu.Lock()
		s.chatDropLogs++
		logIt := s.chatDropLogs <= 3
		s.mu.Unlock()
		if logIt {
			s.log.Debug("dropped chat message", "why", why, "bytes", len(msg.Data))
		}
	})
}

// SendChat sends a text message on the chat data channel. Errors:
// ErrChatTooLong, ErrMalformed (not UTF-8), ErrNotConnected (channel not open),
// ErrClosed.
func (s *Session) SendChat(text string) error {
	if err := s.sendMessage(Message{Kind: MessageText, Text: text}); err != nil {
		return err
	}
	s.stats.chatOut.Add(1)
	return nil
}

// SendTyping tells the partner whether we are typing. Errors as SendChat.
func (s *Session) SendTyping(typing bool) error {
	return s.sendMessage(Message{Kind: MessageTyping, Typing: typing})
}

func (s *Session) sendMessage(m Message) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	s.mu.Lock()
	closed, dc, open := s.closed, s.dc, s.chatOpen
	s.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case dc == nil || (!open && dc.ReadyState() != webrtc.DataChannelStateOpen):
		// The channel may be open before OnOpen has run (a message from the
		// partner can come first).
		return ErrNotConnected
	}
	if err := dc.SendText(string(b)); err != nil {
		return fmt.Errorf("%w: %w", ErrNotConnected, err)
	}
	return nil
}

// RequestKeyframe asks the partner for a video keyframe (PLI), for a
// forwarded stream whose receiver lost the picture. It does nothing before the
// partner's video track has arrived.
func (s *Session) RequestKeyframe() {
	ssrc := s.remoteVideo.Load()
	if ssrc == 0 {
		return
	}
	if err := s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
		s.log.Debug("PLI failed", "err", err)
	}
}

// Stats returns the session's counters. Safe at any time, also after Close.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	st, at := s.state, s.connectedAt
	s.mu.Unlock()
	var first time.Time
	if ns := s.stats.firstVideo.Load(); ns != 0 {
		first = time.Unix(0, ns)
	}
	return Stats{
		State:                st,
		Connected:            st == StateConnected,
		ConnectedAt:          at,
		FirstVideoAt:         first,
		VideoFramesReceived:  s.stats.videoIn.Load(),
		AudioPacketsReceived: s.stats.audioIn.Load(),
		BytesReceived:        s.stats.bytesIn.Load(),
		VideoFramesSent:      s.stats.videoOut.Load(),
		AudioPacketsSent:     s.stats.audioOut.Load(),
		ChatSent:             s.stats.chatOut.Load(),
		ChatReceived:         s.stats.chatIn.Load(),
		ChatDropped:          s.stats.chatDrop.Load(),
	}
}

// Close ends the session: it stops the sources, closes the PeerConnection
// (the partner sees its connection close), waits for every goroutine the
// session started, finalises the recordings, and delivers OnState(StateClosed)
// as the last callback. It is idempotent and safe from any goroutine.
//
// Called from outside the callbacks, Close returns after that last callback
// has run, so no callback runs after it returns. Called from inside a callback
// (or while one is running), it cannot wait for that callback: it returns once
// everything else is torn down, and StateClosed follows as soon as the running
// callback returns; Done tells when it has.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel() // also ends the track readers (readTrack), recordings finalised
		var err error
		if !finishes(closeTimeout, func() { err = s.pc.GracefulClose() }) {
			// Pion can block in its SCTP teardown for minutes on a loaded
			// machine; the call is over for us, and its goroutines end
			// when Pion returns.
			s.closeErr = fmt.Errorf("%w after %v", ErrCloseTimeout, closeTimeout)
			s.log.Warn("peer connection still closing; going on", "after", closeTimeout)
		} else if err != nil {
			s.closeErr = fmt.Errorf("media: close peer connection: %w", err)
		}
		if !finishes(closeTimeout, s.wg.Wait) {
			s.log.Warn("session goroutines still running after close", "after", closeTimeout)
		}
		s.mu.Lock()
		s.state = StateClosed
		s.mu.Unlock()
		s.events.finish(StateClosed)
	})
	s.events.wait()
	return s.closeErr
}

// closeTimeout bounds each wait of Close: for Pion's peer connection, then
// for the session's own goroutines.
const closeTimeout = 5 * time.Second

// finishes runs f on its own goroutine and reports whether it returned
// within d (if not, it runs on).
func finishes(d time.Duration, f func()) bool {
	done := make(chan struct{})
	go func() { f(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// Done is closed once the session is closed and its last callback has
// returned.
func (s *Session) Done() <-chan struct{} { return s.events.done }

// runSource waits for the connection, then runs src until Close.
func (s *Session) runSource(kind string, src Source, track *webrtc.TrackLocalStaticSample, n *atomic.Uint64) {
	select {
	case <-s.ctx.Done():
		return
	case <-s.connected:
	}
	w := &countingWriter{w: track, n: n, log: s.log, kind: kind}
	if err := src.Run(s.ctx, w); err != nil {
		s.log.Warn("source stopped", "kind", kind, "err", err)
	}
}

// countingWriter counts samples written and logs the first write error.
type countingWriter struct {
	w      SampleWriter
	n      *atomic.Uint64
	log    *slog.Logger
	kind   string
	failed bool
}

func (c *countingWriter) WriteSample(smp pmedia.Sample) error {
	if err := c.w.WriteSample(smp); err != nil {
		if !c.failed {
			c.failed = true
			c.log.Debug("writing local sample failed", "kind", c.kind, "err", err)
		}
		return err
	}
	c.n.Add(1)
	return nil
}

// drainRTCP reads RTCP for a local track, so the interceptors (NACK
// responder, reports) see it, and passes keyframe requests (PLI, FIR) to
// onKey if set. It returns when the sender stops (Close).
func drainRTCP(sender *webrtc.RTPSender, onKey func()) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		if onKey != nil && wantsKeyframe(pkts) {
			onKey()
		}
	}
}

// wantsKeyframe reports whether RTCP packets ask for a keyframe.
func wantsKeyframe(pkts []rtcp.Packet) bool {
	for _, p := range pkts {
		switch p.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			return true
		}
	}
	return false
}

// readTrack is the sink side of one remote track: it counts packets, records
// them if asked, and asks for a keyframe until one arrives. It returns when the
// track ends (Close), then finalises the recording.
func (s *Session) readTrack(t *webrtc.TrackRemote) {
	mime := t.Codec().MimeType
	video := strings.EqualFold(mime, webrtc.MimeTypeVP8)
	audio := strings.EqualFold(mime, webrtc.MimeTypeOpus)
	log := s.log.With("track", t.Kind().String(), "ssrc", uint32(t.SSRC()))
	if !video && !audio {
		log.Debug("ignoring remote track", "codec", mime)
	}
	rec := s.newRecorder(t, video, audio, log)
	defer rec.close()
	// Close ends the read even if Pion's own close is slow to.
	stop := context.AfterFunc(s.ctx, func() { _ = t.SetReadDeadline(time.Now()) })
	defer stop()

	var (
		keyframe bool
		lastPLI  time.Time
	)
	askKeyframe := func() {
		lastPLI = time.Now()
		if err := s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.SSRC())}}); err != nil {
			log.Debug("PLI failed", "err", err)
		}
	}
	if video {
		s.remoteVideo.CompareAndSwap(0, uint32(t.SSRC()))
		askKeyframe()
	}
	kind := t.Kind()
	for {
		p, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		s.stats.bytesIn.Add(uint64(len(p.Payload)))
		switch {
		case video:
			if p.Marker {
				if s.stats.videoIn.Add(1) == 1 {
					s.stats.firstVideo.Store(time.Now().UnixNano())
				}
			}
			if !keyframe {
				if keyframe = isVP8KeyframePacket(p); !keyframe && time.Since(lastPLI) >= pliInterval {
					askKeyframe()
				}
			}
		case audio:
			s.stats.audioIn.Add(1)
		default:
			continue
		}
		if s.cfg.OnRTP != nil {
			s.cfg.OnRTP(kind, p)
		}
		rec.write(p)
	}
}

// newRecorder opens the recording for the first remote track of each kind, or
// returns nil (no recording; a nil *recorder does nothing).
func (s *Session) newRecorder(t *webrtc.TrackRemote, video, audio bool, log *slog.Logger) *recorder {
	if s.cfg.RecordDir == "" || (!video && !audio) {
		return nil
	}
	ext := ".ogg"
	if video {
		ext = ".ivf"
	}
	s.mu.Lock()
	dup := s.recording[ext]
	s.recording[ext] = true
	s.mu.Unlock()
	if dup {
		log.Debug("not recording a second track of the same kind")
		return nil
	}
	path := filepath.Join(s.cfg.RecordDir, s.cfg.RecordName+ext)
	var (
		snk  sink
		file *recFile
		err  error
	)
	if video {
		snk, file, err = newVideoRecorder(path)
	} else {
		snk, file, err = newAudioRecorder(path, uint32(t.SSRC()))
	}
	if err != nil {
		log.Warn("cannot record", "file", path, "err", err)
		return nil
	}
	return &recorder{sink: snk, file: file, path: path, log: log}
}

// isVP8KeyframePacket reports whether an RTP packet starts a VP8 keyframe.
func isVP8KeyframePacket(p *rtp.Packet) bool {
	var vp8 codecs.VP8Packet
	if _, err := vp8.Unmarshal(p.Payload); err != nil {
		return false
	}
	return vp8.S == 1 && vp8.PID == 0 && len(vp8.Payload) > 0 && vp8.Payload[0]&1 == 0
}
