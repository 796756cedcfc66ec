package media

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/transport/v4"
	"github.com/pion/transport/v4/stdnet"
	"github.com/pion/webrtc/v4"
)

// Payload types offered for the two codecs (the usual browser numbers).
const (
	payloadTypeVP8  = 96
	payloadTypeOpus = 111
)

// EngineConfig configures an Engine: which network paths ICE may use and how
// fast a dead path is given up. The zero value is usable; zero durations take
// the defaults of DefaultEngineConfig.
type EngineConfig struct {
	// IncludeLoopback also gathers loopback candidates (127.0.0.1, ::1), for
	// calls between nodes on one machine.
	IncludeLoopback bool
	// LoopbackOnly gathers loopback UDPv4 candidates only, without mDNS and
	// without ICEServers: fast and deterministic, for tests on one machine.
	LoopbackOnly bool
	// ICEServers are STUN/TURN servers (the relays' pion/turn). Ignored when
	// LoopbackOnly.
	ICEServers []webrtc.ICEServer
	// ICEServersFunc, if set, is asked for more servers at every new session
	// (short-lived TURN credentials fetched from relays). Ignored when
	// LoopbackOnly.
	ICEServersFunc func() []webrtc.ICEServer
	// RelayOnly restricts ICE to TURN relay candidates (privacy mode: the partner
	// never learns this node's addresses). It needs a TURN server in ICEServers.
	RelayOnly bool
	// UDPPortMin and UDPPortMax bound the local UDP ports ICE uses; 0, 0 means
	// ephemeral ports.
	UDPPortMin, UDPPortMax uint16
	// DisconnectedTimeout: ICE reports disconnected after this long without
	// traffic from the partner. FailedTimeout: ICE fails this long after that,
	// so a vanished partner is reported (StateFailed) after
	// DisconnectedTimeout+FailedTimeout; the same total bounds how long ICE
	// checks may run before the first candidate pair works. KeepaliveInterval:
	// how often ICE sends keepalives on an idle connection.
	DisconnectedTimeout, FailedTimeout, KeepaliveInterval time.Duration
	// Net, if set, is the network ICE gathers and sends on instead of the
	// machine's own: a virtual network for tests (pion/transport vnet, with
	// NATs and loss in process). The loopback filters do not apply to it, and
	// mDNS is off (vnet has no multicast).
	Net transport.Net
	// TextOnly is for engines whose sessions are all TextOnly (a text bot):
	// they get none of pion's RTP interceptors (NACK, RTCP reports, TWCC,
	// statistics), whose timers run for every connection, track or not.
	// Media a partner sends still arrives, without those.
	TextOnly bool
	// Logger receives pion's own logs (levels shifted down one step: pion's
	// errors at Warn, its warnings and info at Debug). nil means slog.Default().
	Logger *slog.Logger

	// ignoreRemoteClose makes the PeerConnection ignore a DTLS close_notify from
	// the partner, so tests can see a partner vanish without saying goodbye.
	ignoreRemoteClose bool
}

// Defaults for the ICE timers.
const (
	DefaultDisconnectedTimeout = 2 * time.Second
	DefaultFailedTimeout       = 5 * time.Second
	DefaultKeepaliveInterval   = 1 * time.Second
)

// DefaultEngineConfig is the configuration for real calls: all interfaces,
// no loopback, ICE timers such that a vanished partner is noticed within
// about 7 s.
func DefaultEngineConfig() EngineConfig {
	return EngineConfig{
		DisconnectedTimeout: DefaultDisconnectedTimeout,
		FailedTimeout:       DefaultFailedTimeout,
		KeepaliveInterval:   DefaultKeepaliveInterval,
	}
}

// LoopbackEngineConfig is for tests and single-machine demos: loopback only and
// fast ICE timers (a vanished partner is noticed within about 4 s). Not
// faster: with a thousand nodes on one machine, checks and trickled
// candidates can be a second or two late, and 1 s timers failed most calls.
// Keepalives go once a second, as on the internet: at 250 ms, with 300
// nodes in data calls and nothing else to do, ICE's keepalives were a
// quarter of the machine's CPU.
func LoopbackEngineConfig() EngineConfig {
	return EngineConfig{
		LoopbackOnly:        true,
		IncludeLoopback:     true,
		DisconnectedTimeout: 2 * time.Second,
		FailedTimeout:       2 * time.Second,
		KeepaliveInterval:   DefaultKeepaliveInterval,
	}
}

// Validate reports whether c makes sense. Errors wrap ErrBadConfig.
func (c EngineConfig) Validate() error {
	switch {
	case c.UDPPortMin > c.UDPPortMax:
		return fmt.Errorf("%w: UDP port range %d-%d is empty", ErrBadConfig, c.UDPPortMin, c.UDPPortMax)
	case c.UDPPortMin == 0 && c.UDPPortMax != 0:
		return fmt.Errorf("%w: UDP port range needs both ends (got 0-%d)", ErrBadConfig, c.UDPPortMax)
	case c.DisconnectedTimeout < 0 || c.FailedTimeout < 0 || c.KeepaliveInterval < 0:
		return fmt.Errorf("%w: negative ICE timeout", ErrBadConfig)
	case c.RelayOnly && c.LoopbackOnly:
		return fmt.Errorf("%w: RelayOnly and LoopbackOnly exclude each other", ErrBadConfig)
	}
	return nil
}

func (c EngineConfig) withDefaults() EngineConfig {
	if c.DisconnectedTimeout == 0 {
		c.DisconnectedTimeout = DefaultDisconnectedTimeout
	}
	if c.FailedTimeout == 0 {
		c.FailedTimeout = DefaultFailedTimeout
	}
	if c.KeepaliveInterval == 0 {
		c.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.LoopbackOnly {
		c.IncludeLoopback = true
		c.ICEServers = nil
		c.ICEServersFunc = nil
	}
	return c
}

// Engine builds the sessions of one node. It holds one pion API (codecs,
// interceptors, network settings), no network resources of its own, and is
// safe for concurrent use. It needs no Close.
type Engine struct {
	api       *webrtc.API
	cfg       EngineConfig
	relayOnly atomic.Bool // privacy mode, switchable between calls

	certMu   sync.Mutex
	cert     webrtc.Certificate // the sessions' DTLS certificate (see certificate)
	certDone time.Time          // when cert was made; zero: none yet
}

// certLifetime is how long an engine's sessions share one DTLS certificate
// before it makes a new one.
const certLifetime = time.Hour

// certificate returns the DTLS certificate for a new session. Making one
// (an ECDSA key and a signed X.509 certificate) was an eighth of the CPU a
// data-only call costs both sides (BenchmarkDataCall), so the sessions of
// an engine share one for certLifetime. A partner learns nothing from it
// that the node's peer id, which every partner sees, does not already
// tell: that two calls came from the same node; nor does a TURN relay
// carrying a privacy-mode call, which sees the node's address.
func (e *Engine) certificate() (webrtc.Certificate, error) {
	e.certMu.Lock()
	defer e.certMu.Unlock()
	if !e.certDone.IsZero() && time.Since(e.certDone) < certLifetime {
		return e.cert, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return webrtc.Certificate{}, fmt.Errorf("media: certificate key: %w", err)
	}
	c, err := webrtc.GenerateCertificate(key)
	if err != nil {
		return webrtc.Certificate{}, fmt.Errorf("media: certificate: %w", err)
	}
	e.cert, e.certDone = *c, time.Now()
	return e.cert, nil
}

// SetRelayOnly switches privacy mode (ICE relay candidates only, see
// EngineConfig.RelayOnly) for the calls started from now on.
func (e *Engine) SetRelayOnly(on bool) error {
	if on && e.cfg.LoopbackOnly {
		return fmt.Errorf("%w: privacy mode needs TURN relays; a loopback-only engine has none", ErrBadConfig)
	}
	e.relayOnly.Store(on)
	return nil
}

// TextOnly reports whether the engine was built for text-only sessions
// (EngineConfig.TextOnly: no RTP interceptors).
func (e *Engine) TextOnly() bool { return e.cfg.TextOnly }

// RelayOnly reports whether privacy mode is on.
func (e *Engine) RelayOnly() bool { return e.relayOnly.Load() }

// CanRelayOnly reports whether privacy mode can be switched on.
func (e *Engine) CanRelayOnly() bool { return !e.cfg.LoopbackOnly }

// NewEngine builds an Engine: a MediaEngine with VP8 and Opus only, pion's
// default interceptors (NACK, RTCP reports, TWCC, stats; none when
// cfg.TextOnly) and a SettingEngine with cfg's network settings and ICE
// timers.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()

	se := webrtc.SettingEngine{LoggerFactory: pionLoggerFactory{log: cfg.Logger}}
	se.SetICETimeouts(cfg.DisconnectedTimeout, cfg.FailedTimeout, cfg.KeepaliveInterval)
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	if cfg.Net != nil {
		se.SetNet(cfg.Net)
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	}
	if cfg.LoopbackOnly {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		if cfg.Net == nil {
			se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
			if names := loopbackInterfaces(); len(names) > 0 {
				se.SetInterfaceFilter(func(name string) bool { return names[name] })
			}
			// Without a Net, every session's ICE agent lists the machine's
			// interfaces (netlink) anew: a twentieth of a data-only call's
			// CPU. Loopback does not come and go, so the sessions share one
			// list. (On real networks interfaces change; each call looks.)
			if n, err := stdnet.NewNet(); err == nil {
				se.SetNet(n)
			}
		}
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	}
	if cfg.UDPPortMin != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.UDPPortMin, cfg.UDPPortMax); err != nil {
			return nil, fmt.Errorf("%w: UDP port range: %w", ErrBadConfig, err)
		}
	}
	if cfg.ignoreRemoteClose {
		se.DisableCloseByDTLS(true)
	}

	api, err := newAPI(se, !cfg.TextOnly)
	if err != nil {
		return nil, err
	}
	e := &Engine{api: api, cfg: cfg}
	e.relayOnly.Store(cfg.RelayOnly)
	return e, nil
}

// newAPI builds a pion API with VP8 and Opus only, pion's default
// interceptors (unless interceptors is false) and the given network
// settings.
func newAPI(se webrtc.SettingEngine, interceptors bool) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	videoFeedback := []webrtc.RTCPFeedback{
		{Type: webrtc.TypeRTCPFBGoogREMB},
		{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
		{Type: webrtc.TypeRTCPFBNACK},
		{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback,
		},
		PayloadType: payloadTypeVP8,
	}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("media: register VP8: %w", err)
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1",
		},
		PayloadType: payloadTypeOpus,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("media: register Opus: %w", err)
	}
	reg := &interceptor.Registry{}
	if interceptors {
		if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
			return nil, fmt.Errorf("media: register interceptors: %w", err)
		}
	}
	return webrtc.NewAPI(
		webrtc.WithMediaEngine(m),
		webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(se),
	), nil
}

func (e *Engine) peerConfig() (webrtc.Configuration, error) {
	cert, err := e.certificate()
	if err != nil {
		return webrtc.Configuration{}, err
	}
	c := webrtc.Configuration{ICEServers: e.cfg.ICEServers, Certificates: []webrtc.Certificate{cert}}
	if f := e.cfg.ICEServersFunc; f != nil {
		c.ICEServers = append(append([]webrtc.ICEServer{}, c.ICEServers...), f()...)
	}
	if e.relayOnly.Load() {
		c.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	return c, nil
}

// loopbackInterfaces names the loopback interfaces ("lo" on Linux, "lo0" on
// BSDs), or nil if the interfaces cannot be listed.
func loopbackInterfaces() map[string]bool {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	names := map[string]bool{}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 {
			names[ifc.Name] = true
		}
	}
	return names
}
