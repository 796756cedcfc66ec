package node

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pion/webrtc/v4"

	"serendip/media"
)

// turnCreds holds the freshest TURN credentials from each relay.
type turnCreds struct {
	mu     sync.Mutex
	byPeer map[peer.ID]media.TURNCredentials
}

// iceServers returns the STUN/TURN servers whose credentials are still good
// for a call's lifetime; the media engine asks at every new call.
func (n *Node) iceServers() []webrtc.ICEServer {
	n.turn.mu.Lock()
	defer n.turn.mu.Unlock()
	var out []webrtc.ICEServer
	soon := time.Now().Add(time.Minute)
	for _, c := range n.turn.byPeer {
		if c.Expires.After(soon) {
			out = append(out, c.ICEServer())
		}
	}
	return out
}

// fetchTURN asks the bootstrap peers (relays) for TURN credentials and
// renews them before they expire. Peers that do not serve TURN are asked
// again only rarely.
func (n *Node) fetchTURN(connected <-chan struct{}) {
	select {
	case <-connected:
	case <-n.ctx.Done():
		return
	}
	next := make(map[peer.ID]time.Time)
	for {
		now := time.Now()
		wake := now.Add(time.Minute)
		for _, ai := range n.cfg.Bootstrap {
			if t, ok := next[ai.ID]; ok && now.Before(t) {
				wake = minTime(wake, t)
				continue
			}
			c, err := n.askTURN(ai.ID)
			if err != nil {
				n.log.Debug("no TURN credentials", "relay", ai.ID, "err", err)
				next[ai.ID] = now.Add(30 * time.Second)
			} else {
				n.turn.mu.Lock()
				n.turn.byPeer[ai.ID] = c
				n.turn.mu.Unlock()
				// Renew halfway through their life.
				next[ai.ID] = now.Add(max(time.Until(c.Expires)/2, 10*time.Second))
			}
			wake = minTime(wake, next[ai.ID])
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(time.Until(wake)):
		}
	}
}

func (n *Node) askTURN(relay peer.ID) (media.TURNCredentials, error) {
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	s, err := n.h.NewStream(network.WithAllowLimitedConn(ctx, "turn"), relay, media.TURNProtocol)
	if err != nil {
		return media.TURNCredentials{}, err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(5 * time.Second))
	c, err := media.ReadTURNCredentials(s)
	if err != nil {
		s.Reset()
	}
	return c, err
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
