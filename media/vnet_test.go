package media

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/transport/v4/vnet"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
)

// The virtual topology: a WAN router with the TURN server, and two LANs
// behind NATs, each with one host. Addresses exist inside vnet only; no real
// socket is opened.
const (
	vnetWANCIDR   = "1.2.3.0/24"
	vnetTURNIP    = "1.2.3.4"
	vnetTURNPort  = 3478
	vnetTURNUser  = "serendip"
	vnetTURNPass  = "vnet-secret"
	vnetTURNRealm = "serendip.test"
)

// vnetSide is one LAN: its NAT's public address, its private subnet and host.
var vnetSides = [2]struct{ public, cidr, host string }{
	{"1.2.3.10", "192.168.0.0/24", "192.168.0.2"},
	{"1.2.3.20", "10.0.0.0/24", "10.0.0.2"},
}

// NAT behaviours (RFC 4787): a port-restricted cone keeps one mapping per
// local port; a symmetric NAT maps each destination anew, so only a relay
// gets through two of them.
var (
	natCone = vnet.NATType{
		Mode:              vnet.NATModeNormal,
		MappingBehavior:   vnet.EndpointIndependent,
		FilteringBehavior: vnet.EndpointAddrPortDependent,
	}
	natSymmetric = vnet.NATType{
		Mode:              vnet.NATModeNormal,
		MappingBehavior:   vnet.EndpointAddrPortDependent,
		FilteringBehavior: vnet.EndpointAddrPortDependent,
	}
)

// vnetBuildMu serialises building topologies: vnet.NewRouter and vnet.NewNet
// bump a package-level MAC address counter without a lock (a data race when
// parallel tests build networks at once).
var vnetBuildMu sync.Mutex

// vnetTopology is a started virtual network; it is torn down in t.Cleanup.
type vnetTopology struct {
	wan     *vnet.Router
	hosts   [2]*vnet.Net
	dropped atomic.Uint64 // UDP packets the WAN dropped on purpose
}

// newVnetTopology builds the WAN with a TURN server and the two NATed LANs.
// dropEvery > 0 makes the WAN router drop every dropEvery-th UDP packet it
// forwards (deterministic loss).
func newVnetTopology(t *testing.T, nats [2]vnet.NATType, dropEvery uint64) *vnetTopology {
	t.Helper()
	vnetBuildMu.Lock()
	defer vnetBuildMu.Unlock()
	// vnet warns of every packet a NAT filters; pionLoggerFactory moves that
	// to Debug (MEDIA_TEST_DEBUG=1 shows it).
	lf := pionLoggerFactory{log: testLogger(t).With("peer", "vnet")}

	wan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: vnetWANCIDR, LoggerFactory: lf})
	if err != nil {
		t.Fatal(err)
	}
	wanNet, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{vnetTURNIP}})
	if err != nil {
		t.Fatal(err)
	}
	if err := wan.AddNet(wanNet); err != nil {
		t.Fatal(err)
	}

	topo := &vnetTopology{wan: wan}
	for i, side := range vnetSides {
		nat := nats[i]
		lan, err := vnet.NewRouter(&vnet.RouterConfig{
			CIDR:          side.cidr,
			StaticIPs:     []string{side.public},
			NATType:       &nat,
			LoggerFactory: lf,
		})
		if err != nil {
			t.Fatal(err)
		}
		host, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{side.host}})
		if err != nil {
			t.Fatal(err)
		}
		if err := lan.AddNet(host); err != nil {
			t.Fatal(err)
		}
		if err := wan.AddRouter(lan); err != nil {
			t.Fatal(err)
		}
		topo.hosts[i] = host
	}

	if dropEvery > 0 {
		var n atomic.Uint64
		wan.AddChunkFilter(func(c vnet.Chunk) bool {
			if c.Network() != "udp" || n.Add(1)%dropEvery != 0 {
				return true
			}
			topo.dropped.Add(1)
			return false
		})
	}

	if err := wan.Start(); err != nil { // starts the LAN routers too
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := wan.Stop(); err != nil {
			t.Errorf("stop WAN router: %v", err)
		}
	})

	conn, err := wanNet.ListenPacket("udp4", fmt.Sprintf("%s:%d", vnetTURNIP, vnetTURNPort))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm: vnetTURNRealm,
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			if ra.Username != vnetTURNUser {
				return "", nil, false
			}
			return ra.Username, turn.GenerateAuthKey(ra.Username, ra.Realm, vnetTURNPass), true
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: conn,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
				RelayAddress: net.ParseIP(vnetTURNIP),
				Address:      "0.0.0.0",
				Net:          wanNet,
			},
		}},
		LoggerFactory: lf,
	})
	if err != nil {
		_ = conn.Close()
		t.Fatal(err)
	}
	// Registered after the router's cleanup, so it runs before it.
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close TURN server: %v", err)
		}
	})
	return topo
}

// engine builds an Engine on host i of the topology, with the vnet TURN
// server as STUN and TURN and fast ICE timers.
func (v *vnetTopology) engine(t *testing.T, i int, relayOnly bool) *Engine {
	t.Helper()
	cfg := EngineConfig{
		Net: v.hosts[i],
		ICEServers: []webrtc.ICEServer{
			{URLs: []string{fmt.Sprintf("stun:%s:%d", vnetTURNIP, vnetTURNPort)}},
			{
				URLs:       []string{fmt.Sprintf("turn:%s:%d?transport=udp", vnetTURNIP, vnetTURNPort)},
				Username:   vnetTURNUser,
				Credential: vnetTURNPass,
			},
		},
		RelayOnly:           relayOnly,
		DisconnectedTimeout: 2 * time.Second,
		FailedTimeout:       3 * time.Second,
		KeepaliveInterval:   250 * time.Millisecond,
		Logger:              testLogger(t).With("peer", fmt.Sprintf("pion%d", i)),
	}
	eng, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// TestVnet runs calls across virtual NATs: the ICE ladder (direct through
// cone NATs, TURN through symmetric ones, TURN when asked for privacy) and
// a lossy WAN, all in process and without root.
func TestVnet(t *testing.T) {
	cases := []struct {
		name      string
		nats      [2]vnet.NATType
		relayOnly [2]bool
		dropEvery uint64
		// wantRelay: whether each side's Path must be "relay".
		wantRelay [2]bool
		// wantLocal, if set, is the type each side's own candidate must have.
		wantLocal [2]webrtc.ICECandidateType
		frames    uint64 // video frames and audio packets each way; 0 means 20
		slow      bool
	}{
		{name: "cone-cone", nats: [2]vnet.NATType{natCone, natCone}},
		{
			name:      "symmetric-symmetric",
			nats:      [2]vnet.NATType{natSymmetric, natSymmetric},
			wantRelay: [2]bool{true, true},
		},
		{
			name:      "privacy",
			nats:      [2]vnet.NATType{natCone, natCone},
			relayOnly: [2]bool{true, false},
			wantRelay: [2]bool{true, true},
			wantLocal: [2]webrtc.ICECandidateType{webrtc.ICECandidateTypeRelay},
		},
		{
			name:      "loss",
			nats:      [2]vnet.NATType{natCone, natCone},
			dropEvery: 20, // 5 %
			frames:    60, // long enough for NACKs and retransmissions
			slow:      true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.slow && testing.Short() {
				t.Skip("lossy vnet call is slow; skipped in -short")
			}
			t.Parallel()
			start := time.Now()
			topo := newVnetTopology(t, tc.nats, tc.dropEvery)
			engA := topo.engine(t, 0, tc.relayOnly[0])
			engB := topo.engine(t, 1, tc.relayOnly[1])
			media := SessionConfig{VideoFile: clipIVF, AudioFile: clipOgg}
			a, b := startCall(t, engA, engB, media, media)

			for _, p := range []*peer{a, b} {
				p.waitState(t, StateConnected, 15*time.Second)
			}
			connected := time.Since(start)
			enough := tc.frames
			if enough == 0 {
				enough = 20
			}
			waitFor(t, 15*time.Second, "media both ways", func() bool {
				sa, sb := a.s.Stats(), b.s.Stats()
				return sa.VideoFramesReceived > enough && sa.AudioPacketsReceived > enough &&
					sb.VideoFramesReceived > enough && sb.AudioPacketsReceived > enough
			})

			if tc.dropEvery > 0 {
				t.Logf("WAN dropped %d UDP packets", topo.dropped.Load())
				if topo.dropped.Load() == 0 {
					t.Errorf("the lossy WAN dropped nothing")
				}
			}
			for i, p := range []*peer{a, b} {
				path := p.s.Path()
				local, remote := selectedPair(t, p.s)
				st := p.s.Stats()
				t.Logf("%s: path %q (%v -> %v), connected after %v, %d video frames, %d audio packets received",
					p.name, path, local, remote, connected.Round(time.Millisecond),
					st.VideoFramesReceived, st.AudioPacketsReceived)
				if want := tc.wantLocal[i]; want != webrtc.ICECandidateTypeUnknown && local.Typ != want {
					t.Errorf("%s: local candidate %v, want type %v", p.name, local, want)
				}
				// Both hosts sit on private LANs: a working direct path must
				// use the partner's NAT mapping, never its host address.
				if !tc.wantRelay[i] && remote.Typ == webrtc.ICECandidateTypeHost {
					t.Errorf("%s: remote candidate %v is a private host address", p.name, remote)
				}
				switch {
				case path == "":
					t.Errorf("%s: no selected candidate pair", p.name)
				case path != pathName(local.Typ, remote.Typ):
					t.Errorf("%s: path %q, but the selected pair %v -> %v is %q", p.name, path, local, remote, pathName(local.Typ, remote.Typ))
				case tc.wantRelay[i] && path != "relay":
					t.Errorf("%s: path %q, want relay", p.name, path)
				case !tc.wantRelay[i] && path == "relay":
					t.Errorf("%s: path %q, want a direct path", p.name, path)
				}
			}
		})
	}
}

// selectedPair returns the session's selected ICE candidate pair.
func selectedPair(t *testing.T, s *Session) (local, remote *webrtc.ICECandidate) {
	t.Helper()
	pair, err := s.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("no selected candidate pair: %v", err)
	}
	return pair.Local, pair.Remote
}
