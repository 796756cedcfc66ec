package node_test

import (
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"serendip/discovery"
	"serendip/media"
	"serendip/node"
)

// sendRaw opens a stream, writes raw bytes and reports whether the node
// answered anything before ending the stream.
func sendRaw(t *testing.T, h host.Host, to peer.ID, proto protocol.ID, raw []byte) (answered bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := h.NewStream(ctx, to, proto)
	if err != nil {
		t.Fatalf("open %s: %v", proto, err)
	}
	defer s.Reset()
	_ = s.SetDeadline(time.Now().Add(8 * time.Second))
	_, _ = s.Write(raw)
	_ = s.CloseWrite()
	b, _ := io.ReadAll(s)
	return len(b) > 0
}

// frame frames body as the signal protocol does: a uvarint length.
func frame(body []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

// TestBadInputIsDropped throws malformed, oversized and unexpected claims,
// signals and presence at a node, then checks it still matches and calls.
func TestBadInputIsDropped(t *testing.T) {
	if testing.Short() {
		t.Skip("real libp2p hosts; skipped in -short")
	}
	nw := newNetwork(t)
	victim, vh := nw.bot(0)

	attacker := newHost(t)
	if err := attacker.Connect(context.Background(), peer.AddrInfo{ID: vh.ID(), Addrs: vh.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if err := attacker.Connect(context.Background(), nw.relay); err != nil {
		t.Fatal(err)
	}

	claimJunk := map[string][]byte{
		"empty":           nil,
		"garbage":         []byte("hello, is this the claim protocol?"),
		"huge length":     {0xff, 0xff},
		"oversized frame": claimFrame(make([]byte, discovery.MaxClaimFrame+1)),
		"bad version":     claimFrame([]byte{99, 1, 2, 3}),
		"truncated claim": claimFrame([]byte{1, 2, 3}),
		"reply not claim": mustReply(t),
		"cut-off claim":   mustClaim(t)[:10],
	}
	for name, raw := range claimJunk {
		if sendRaw(t, attacker, vh.ID(), discovery.ClaimProtocol, raw) {
			t.Errorf("claim %s: node answered; want the stream dropped", name)
		}
	}
	signalJunk := map[string][]byte{
		"garbage":       []byte("v=0 this is not a frame"),
		"huge length":   binary.AppendUvarint(nil, media.MaxSignalSize+1),
		"offer first":   mustSignal(t, media.Signal{Kind: media.SignalOffer, SDP: "v=0"}),
		"unknown match": mustSignal(t, media.Signal{Kind: media.SignalHello, MatchID: "00112233445566778899aabbccddeeff"}),
	}
	for name, raw := range signalJunk {
		if sendRaw(t, attacker, vh.ID(), node.SignalProtocol, raw) {
			t.Errorf("signal %s: node answered; want the stream dropped", name)
		}
	}

	// Junk presence, signed by the attacker (so only the validator stands
	// in its way), published where the relay and the victim hear it.
	ps, err := pubsub.NewGossipSub(context.Background(), attacker)
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(discovery.PresenceTopic(nw.name))
	if err != nil {
		t.Fatal(err)
	}
	far, _ := discovery.Presence{Seq: 1, Expires: time.Now().Add(24 * time.Hour).UnixMilli(), Searching: true}.Marshal()
	stale, _ := discovery.Presence{Seq: 2, Expires: time.Now().Add(-time.Minute).UnixMilli(), Searching: true}.Marshal()
	for _, junk := range [][]byte{[]byte("junk"), make([]byte, 8192), far, stale} {
		_ = topic.Publish(context.Background(), junk)
	}

	// The node still answers and, with a partner, still calls.
	if st := state(t, victim); st.State != "searching" {
		t.Fatalf("victim is %s after bad input; want searching", st.State)
	}
	partner, _ := nw.bot(0)
	waitFor(t, 20*time.Second, "the victim to call a real partner", func() bool {
		st := state(t, victim)
		return st.State == "in_call" && st.Media.VideoFramesReceived > 0
	})
	if st := state(t, partner); st.Partner != vh.ID().String() {
		t.Errorf("partner is with %q; want the victim", st.Partner)
	}
	if st := state(t, victim); st.Partner == attacker.ID().String() {
		t.Error("victim matched the attacker, whose presence was all junk")
	}
	// Control: a well-formed claim does get an answer (busy, now), so the
	// silence above was the node dropping the junk.
	if !sendRaw(t, attacker, vh.ID(), discovery.ClaimProtocol, mustClaim(t)) {
		t.Error("a valid claim got no answer; the checks above prove nothing")
	}
}

// claimFrame frames b as the claim protocol does: a 2-byte big-endian length.
func claimFrame(b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

func mustClaim(t *testing.T) []byte {
	b, err := discovery.Claim{Ticket: 1}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return claimFrame(b)
}

func mustReply(t *testing.T) []byte {
	b, err := discovery.Reply{Verdict: discovery.Accept}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return claimFrame(b)
}

func mustSignal(t *testing.T, s media.Signal) []byte {
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return frame(b)
}
