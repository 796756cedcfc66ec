package relay

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pion/logging"
	"github.com/pion/turn/v5"
	"golang.org/x/time/rate"

	"serendip/internal/limit"
	"serendip/media"
)

// TURNProtocol is where the relay hands out TURN credentials (see
// media.TURNProtocol), so that its TURN server is no open relay.
const TURNProtocol = media.TURNProtocol

// TURNConfig configures the relay's STUN/TURN server.
type TURNConfig struct {
	// Listen is the UDP (and TCP) address, e.g. "0.0.0.0:3478".
	Listen string
	// PublicIP is the address given to clients in relayed candidates and in
	// the STUN/TURN URLs; default: the Listen IP when it is not unspecified.
	PublicIP net.IP
	// TCP also serves TURN over TCP on the same port.
	TCP bool
	// CredentialTTL is how long handed-out credentials stay valid.
	CredentialTTL time.Duration
	// MaxAllocations bounds the allocations one peer may hold at once.
	MaxAllocations int
	// BytesPerSecond bounds the relayed traffic of one allocation, each way;
	// packets over it are dropped.
	BytesPerSecond int
	// CredentialsPerSecond bounds how often one peer may ask for credentials.
	CredentialsPerSecond float64
}

// DefaultTURNConfig: 10-minute credentials, 8 allocations and 4 Mbit/s each
// way per allocation.
func DefaultTURNConfig() TURNConfig {
	return TURNConfig{CredentialTTL: 10 * time.Minute, MaxAllocations: 8, BytesPerSecond: 512 << 10, CredentialsPerSecond: 1}
}

// TURN is a STUN/TURN server whose credentials are given out over libp2p.
type TURN struct {
	cfg    TURNConfig
	h      host.Host
	log    *slog.Logger
	secret string
	srv    *turn.Server
	urls   []string
	limits *limit.PerPeer

	mu     sync.Mutex
	allocs map[string]int // per user id (peer id)
}

// NewTURN starts the TURN server and registers TURNProtocol on h.
func NewTURN(h host.Host, cfg TURNConfig, log *slog.Logger) (*TURN, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hostStr, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("turn: listen address %q: %w", cfg.Listen, err)
	}
	if _, err := strconv.Atoi(portStr); err != nil {
		return nil, fmt.Errorf("turn: listen address %q: bad port", cfg.Listen)
	}
	ip := cfg.PublicIP
	if ip == nil {
		ip = net.ParseIP(hostStr)
		if ip == nil || ip.IsUnspecified() {
			return nil, fmt.Errorf("turn: listening on %q: give the public IP to advertise", cfg.Listen)
		}
	}
	if cfg.CredentialTTL <= 0 || cfg.MaxAllocations <= 0 || cfg.BytesPerSecond <= 0 || cfg.CredentialsPerSecond <= 0 {
		return nil, errors.New("turn: TTL, allocation, bandwidth and credential limits must be positive")
	}
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	t := &TURN{
		cfg: cfg, h: h, log: log, secret: base64.StdEncoding.EncodeToString(key[:]),
		limits: limit.NewPerPeer(cfg.CredentialsPerSecond, 3),
		allocs: make(map[string]int),
	}
	udp, err := net.ListenPacket("udp4", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("turn: %w", err)
	}
	// Port 0 picks one; TCP, if wanted, then takes the same.
	portStr = strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port)
	relayAddr := func() turn.RelayAddressGenerator {
		return &limitedGenerator{
			RelayAddressGeneratorStatic: turn.RelayAddressGeneratorStatic{RelayAddress: ip, Address: hostStr},
			bytesPerSecond:              cfg.BytesPerSecond,
		}
	}
	sc := turn.ServerConfig{
		Realm:             "serendip",
		AuthHandler:       turn.LongTermTURNRESTAuthHandler(t.secret, quietLogger()),
		QuotaHandler:      t.quota,
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: udp, RelayAddressGenerator: relayAddr()}},
		EventHandler: turn.EventHandler{
			OnAllocationCreated: func(_, _ net.Addr, _, user, _ string, _ net.Addr, _ int) { t.count(user, +1) },
			OnAllocationDeleted: func(_, _ net.Addr, _, user, _ string) { t.count(user, -1) },
		},
		LoggerFactory: quietFactory{},
	}
	t.urls = []string{
		"stun:" + net.JoinHostPort(ip.String(), portStr),
		"turn:" + net.JoinHostPort(ip.String(), portStr) + "?transport=udp",
	}
	if cfg.TCP {
		tcp, err := net.Listen("tcp4", net.JoinHostPort(hostStr, portStr))
		if err != nil {
			udp.Close()
			return nil, fmt.Errorf("turn: %w", err)
		}
		sc.ListenerConfigs = []turn.ListenerConfig{{Listener: tcp, RelayAddressGenerator: relayAddr()}}
		t.urls = append(t.urls, "turn:"+net.JoinHostPort(ip.String(), portStr)+"?transport=tcp")
	}
	if t.srv, err = turn.NewServer(sc); err != nil {
		udp.Close()
		return nil, fmt.Errorf("turn: %w", err)
	}
	h.SetStreamHandler(TURNProtocol, t.serve)
	return t, nil
}

// URLs are the STUN and TURN URLs the server answers on.
func (t *TURN) URLs() []string { return t.urls }

// Credentials issues credentials for p.
func (t *TURN) Credentials(p peer.ID) (media.TURNCredentials, error) {
	user, pass, err := turn.GenerateLongTermTURNRESTCredentials(t.secret, p.String(), t.cfg.CredentialTTL)
	if err != nil {
		return media.TURNCredentials{}, err
	}
	return media.TURNCredentials{URLs: t.urls, Username: user, Password: pass,
		Expires: time.Now().Add(t.cfg.CredentialTTL).Truncate(time.Second)}, nil
}

func (t *TURN) serve(s network.Stream) {
	defer s.Close()
	from := s.Conn().RemotePeer()
	if !t.limits.Allow(from) {
		t.log.Debug("turn credentials refused: rate limit", "peer", from)
		s.Reset()
		return
	}
	c, err := t.Credentials(from)
	if err != nil {
		s.Reset()
		return
	}
	_ = s.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := media.WriteTURNCredentials(s, c); err != nil {
		t.log.Debug("turn credentials not sent", "peer", from, "err", err)
		s.Reset()
	}
}

func (t *TURN) quota(user, _ string, _ net.Addr) bool {
	// user is the full REST username "expiry:peer id"; count per peer id.
	id := user
	if _, after, ok := strings.Cut(user, ":"); ok {
		id = after
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.allocs[id] < t.cfg.MaxAllocations
}

func (t *TURN) count(user string, d int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.allocs[user] += d
	if t.allocs[user] <= 0 {
		delete(t.allocs, user)
	}
}

// Allocations returns the number of live allocations.
func (t *TURN) Allocations() int { return t.srv.AllocationCount() }

// Close stops the server. Idempotent.
func (t *TURN) Close() error {
	t.h.RemoveStreamHandler(TURNProtocol)
	return t.srv.Close()
}

// limitedGenerator allocates relay sockets whose traffic is rate-limited.
type limitedGenerator struct {
	turn.RelayAddressGeneratorStatic
	bytesPerSecond int
}

func (g *limitedGenerator) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	conn, addr, err := g.RelayAddressGeneratorStatic.AllocatePacketConn(conf)
	if err != nil {
		return nil, nil, err
	}
	burst := max(g.bytesPerSecond/4, 64<<10)
	return &limitedConn{PacketConn: conn,
		in:  rate.NewLimiter(rate.Limit(g.bytesPerSecond), burst),
		out: rate.NewLimiter(rate.Limit(g.bytesPerSecond), burst)}, addr, nil
}

// limitedConn drops packets beyond its byte budget, each way.
type limitedConn struct {
	net.PacketConn
	in, out *rate.Limiter
}

func (c *limitedConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.in.AllowN(time.Now(), n) {
			return n, addr, err
		}
	}
}

func (c *limitedConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.out.AllowN(time.Now(), len(p)) {
		return len(p), nil // dropped, as a congested link would
	}
	return c.PacketConn.WriteTo(p, addr)
}

// quietFactory keeps pion/turn's own logs out of the relay's output.
type quietFactory struct{}

func (quietFactory) NewLogger(string) logging.LeveledLogger { return quietLogger() }

func quietLogger() logging.LeveledLogger {
	return logging.NewDefaultLeveledLoggerForScope("turn", logging.LogLevelDisabled, io.Discard)
}
