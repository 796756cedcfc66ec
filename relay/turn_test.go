package relay

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"

	"serendip/internal/hosttest"
	"serendip/media"
)

// startTURN runs a TURN server on loopback and returns a peer that may ask
// it for credentials.
func startTURN(t *testing.T, mod func(*TURNConfig)) (*TURN, host.Host, host.Host) {
	t.Helper()
	rh := hosttest.Loopback(t)
	cfg := DefaultTURNConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.TCP = true
	if mod != nil {
		mod(&cfg)
	}
	tr, err := NewTURN(rh, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	client := hosttest.Loopback(t)
	if err := client.Connect(context.Background(), peer.AddrInfo{ID: rh.ID(), Addrs: rh.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return tr, rh, client
}

func askCredentials(t *testing.T, client host.Host, relay peer.ID) media.TURNCredentials {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := client.NewStream(ctx, relay, TURNProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := media.ReadTURNCredentials(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// allocate makes one TURN allocation with the given credentials.
func allocate(t *testing.T, url, user, pass string) (net.PacketConn, error) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c, err := turn.NewClient(&turn.ClientConfig{
		TURNServerAddr: url, STUNServerAddr: url, Username: user, Password: pass,
		Realm: "serendip", Conn: conn, LoggerFactory: quietFactory{},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	return c.Allocate()
}

func TestTURNCredentialsOverLibp2p(t *testing.T) {
	tr, rh, client := startTURN(t, func(c *TURNConfig) { c.MaxAllocations = 2 })
	creds := askCredentials(t, client, rh.ID())
	if len(creds.URLs) != 3 || time.Until(creds.Expires) < 9*time.Minute {
		t.Fatalf("credentials: %+v", creds)
	}
	addr := creds.URLs[0][len("stun:"):]

	// Tampered credentials are refused.
	if _, err := allocate(t, addr, creds.Username, creds.Password+"x"); err == nil {
		t.Fatal("allocation with a wrong password succeeded")
	}
	if _, err := allocate(t, addr, "1:"+client.ID().String(), creds.Password); err == nil {
		t.Fatal("allocation with an expired username succeeded")
	}
	// The real ones work, up to the per-peer quota.
	for i := range 2 {
		relayConn, err := allocate(t, addr, creds.Username, creds.Password)
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if ip := relayConn.LocalAddr().(*net.UDPAddr).IP; !ip.IsLoopback() {
			t.Fatalf("relayed address %v; want the configured loopback IP", ip)
		}
	}
	if _, err := allocate(t, addr, creds.Username, creds.Password); err == nil {
		t.Fatal("third allocation allowed past a quota of 2")
	}
	if n := tr.Allocations(); n != 2 {
		t.Fatalf("%d allocations live; want 2", n)
	}
}

func TestTURNCredentialRateLimit(t *testing.T) {
	_, rh, client := startTURN(t, func(c *TURNConfig) { c.CredentialsPerSecond = 0.001 })
	for range 3 { // the burst
		askCredentials(t, client, rh.ID())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := client.NewStream(ctx, rh.ID(), TURNProtocol)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := media.ReadTURNCredentials(s); err == nil {
		t.Fatal("credentials handed out past the rate limit")
	}
}

// TestCallThroughTURN: two privacy-mode sessions (relay candidates only)
// connect through the relay's TURN server and carry video both ways.
func TestCallThroughTURN(t *testing.T) {
	if testing.Short() {
		t.Skip("real Pion call through TURN; skipped in -short")
	}
	_, rh, client := startTURN(t, nil)
	creds := askCredentials(t, client, rh.ID())
	eng, err := media.NewEngine(media.EngineConfig{
		IncludeLoopback: true, RelayOnly: true, ICEServers: []webrtc.ICEServer{creds.ICEServer()},
		DisconnectedTimeout: time.Second, FailedTimeout: 2 * time.Second, KeepaliveInterval: 250 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	a, b := newPair(t, eng)
	deadline := time.Now().Add(20 * time.Second)
	for {
		sa, sb := a.Stats(), b.Stats()
		if sa.VideoFramesReceived > 10 && sb.VideoFramesReceived > 10 {
			if pa, pb := a.Path(), b.Path(); pa != "relay" || pb != "relay" {
				t.Fatalf("paths %q and %q; want relay", pa, pb)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no video through TURN: %+v / %+v", sa, sb)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// newPair starts two sessions on eng that signal to each other in memory.
func newPair(t *testing.T, eng *media.Engine) (*media.Session, *media.Session) {
	t.Helper()
	clip := func(name string) string { return filepath.Join("..", "testdata", name) }
	toA, toB := make(chan media.Signal, 64), make(chan media.Signal, 64)
	mk := func(role media.Role, out chan media.Signal) *media.Session {
		s, err := eng.NewSession(media.SessionConfig{
			Role: role, VideoFile: clip("clip.ivf"), AudioFile: clip("clip.ogg"),
			Send: func(sig media.Signal) error { out <- sig; return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := mk(media.Offerer, toB), mk(media.Answerer, toA)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	pump := func(in chan media.Signal, s *media.Session) {
		defer func() { done <- struct{}{} }()
		for {
			select {
			case sig := <-in:
				_ = s.HandleSignal(sig)
			case <-ctx.Done():
				return
			}
		}
	}
	go pump(toA, a)
	go pump(toB, b)
	t.Cleanup(func() { cancel(); <-done; <-done })
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	return a, b
}
