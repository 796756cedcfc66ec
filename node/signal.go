package node

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"serendip/discovery"
	"serendip/media"
)

// SignalProtocol is the libp2p protocol that carries a call's signalling.
const SignalProtocol = "/serendip/signal/1"

// signalTimeout bounds every frame read while opening a stream and every
// frame write.
const signalTimeout = 5 * time.Second

// signalStream is one call's signalling stream; writes are serialised.
type signalStream struct {
	s       network.Stream
	matchID string
	sent    *atomic.Uint64 // counts frames written, if set
	log     *slog.Logger   // logs what leaves, at debug

	mu     sync.Mutex
	closed bool
}

func (ss *signalStream) send(sig media.Signal) error {
	sig.MatchID = ss.matchID
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return fmt.Errorf("signal %s: %w", sig.Kind, network.ErrReset)
	}
	_ = ss.s.SetWriteDeadline(time.Now().Add(signalTimeout))
	if ss.sent != nil {
		ss.sent.Add(1)
	}
	if ss.log != nil && ss.log.Enabled(context.Background(), slog.LevelDebug) {
		// What addresses leave this node (privacy mode must leak none but
		// the relay's); the NAT tests read this line.
		ss.log.Debug("signal out", "kind", sig.Kind, "candidates", candidateSummary(sig))
	}
	if err := media.WriteSignal(ss.s, sig); err != nil {
		ss.s.Reset()
		ss.closed = true
		return fmt.Errorf("signal %s: %w", sig.Kind, err)
	}
	return nil
}

// close ends the stream politely, after whatever was sent (a bye).
func (ss *signalStream) close() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return
	}
	ss.closed = true
	// Close flushes what was written (the bye) before ending the stream.
	_ = ss.s.SetWriteDeadline(time.Now().Add(signalTimeout))
	_ = ss.s.Close()
}

// openSignal opens the offerer's stream and sends the hello.
func (n *Node) openSignal(ctx context.Context, to peer.ID, matchID string) (*signalStream, error) {
	ctx, cancel := context.WithTimeout(ctx, signalTimeout)
	defer cancel()
	s, err := n.h.NewStream(network.WithAllowLimitedConn(ctx, "signal"), to, SignalProtocol)
	if err != nil {
		return nil, fmt.Errorf("open signal stream: %w", err)
	}
	ss := &signalStream{s: s, matchID: matchID, sent: &n.metrics.signalsSent, log: n.log}
	if err := ss.send(media.Signal{Kind: media.SignalHello}); err != nil {
		return nil, err
	}
	return ss, nil
}

// strayBye tells a peer that a match it believes in is off: it accepted a
// claim this node had already given up.
func (n *Node) strayBye(p peer.ID, id discovery.MatchID, reason string) {
	n.goAsync(func() {
		ss, err := n.openSignal(n.ctx, p, id.String())
		if err != nil {
			n.log.Debug("stray bye not sent", "peer", p, "err", err)
			return
		}
		_ = ss.send(media.Signal{Kind: media.SignalBye, Reason: reason})
		ss.close()
	})
}

// handleSignalStream accepts the answerer's side of a call's stream.
func (n *Node) handleSignalStream(s network.Stream) {
	from := s.Conn().RemotePeer()
	if !n.signalLimit.Allow(from) {
		n.log.Debug("signal stream dropped: rate limit", "peer", from)
		s.Reset()
		return
	}
	_ = s.SetReadDeadline(time.Now().Add(signalTimeout))
	hello, err := media.ReadSignal(s)
	if err != nil || hello.Kind != media.SignalHello {
		n.log.Debug("signal stream dropped: no hello", "peer", from, "err", err, "kind", hello.Kind)
		s.Reset()
		return
	}
	_ = s.SetReadDeadline(time.Time{})
	n.metrics.signalsReceived.Add(1)
	ss := &signalStream{s: s, matchID: hello.MatchID, sent: &n.metrics.signalsSent, log: n.log}
	accepted := false
	if err := n.query(func() {
		c := n.call
		if c == nil || c.peer != from || c.id.String() != hello.MatchID || c.offerer || c.stream != nil {
			return
		}
		n.attach(c, ss)
		accepted = true
	}); err != nil || !accepted {
		n.log.Debug("signal stream dropped: no such match", "peer", from, "match", hello.MatchID)
		s.Reset()
	}
}

// readSignals feeds the partner's frames to the call until the stream ends.
func (n *Node) readSignals(c *call, ss *signalStream) {
	for {
		sig, err := media.ReadSignal(ss.s)
		if err == nil {
			n.metrics.signalsReceived.Add(1)
		}
		if err != nil {
			reason := "partner gone"
			n.post(func() { n.endCall(c, reason, false, true) })
			return
		}
		switch sig.Kind {
		case media.SignalBye:
			reason := "partner: " + sig.Reason
			n.post(func() { n.endCall(c, reason, false, true) })
			return
		case media.SignalHello:
		default:
			if sig.MatchID != ss.matchID {
				n.log.Debug("signal for another match dropped", "peer", c.peer)
				continue
			}
			if err := c.sess.HandleSignal(sig); err != nil {
				n.log.Debug("signal refused", "peer", c.peer, "kind", sig.Kind, "err", err)
			}
		}
	}
}

// candidateSummary lists the ICE candidates a signal carries as "type
// address" pairs, from an SDP's a=candidate lines or a trickled candidate.
func candidateSummary(sig media.Signal) string {
	var lines []string
	switch sig.Kind {
	case media.SignalOffer, media.SignalAnswer:
		for _, l := range strings.Split(sig.SDP, "\n") {
			if l = strings.TrimSpace(l); strings.HasPrefix(l, "a=candidate:") {
				lines = append(lines, l)
			}
		}
	case media.SignalCandidate:
		var c struct {
			Candidate string `json:"candidate"`
		}
		if json.Unmarshal([]byte(sig.Candidate), &c) == nil && c.Candidate != "" {
			lines = append(lines, c.Candidate)
		}
	}
	var out []string
	for _, l := range lines {
		// candidate:<foundation> <component> <proto> <priority> <address> <port> typ <type> ...
		f := strings.Fields(l)
		if len(f) >= 8 && f[6] == "typ" {
			out = append(out, f[7]+" "+f[4])
		}
	}
	return strings.Join(out, ", ")
}
