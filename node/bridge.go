package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"serendip/discovery"
	"serendip/media"
)

// ErrNoBridge refuses a browser connection on a node that plays media files
// (a bot): it has no camera to take from a page.
var ErrNoBridge = errors.New("this node plays media files or mirrors; it takes no browser media")

// callMedia decides where a call's media comes from and goes to: the media
// files (a bot; NewSession opens them), the browser bridge (a person: the
// page's camera to the partner, the partner to the page), or the partner's
// own media sent back (a mirror). It returns a function to hand the session
// to once made. Loop only.
func (n *Node) callMedia(c *call, cfg *media.SessionConfig) (func(*media.Session), error) {
	var sess atomic.Pointer[media.Session]
	askPartner := func() {
		if s := sess.Load(); s != nil {
			s.RequestKeyframe()
		}
	}
	switch {
	case n.cfg.Mirror:
		video, err := media.NewRTPTrack(webrtc.RTPCodecTypeVideo, "mirror-video")
		if err != nil {
			return nil, err
		}
		audio, err := media.NewRTPTrack(webrtc.RTPCodecTypeAudio, "mirror-audio")
		if err != nil {
			return nil, err
		}
		cfg.VideoRTP, cfg.AudioRTP = video, audio
		cfg.OnRTP = func(kind webrtc.RTPCodecType, p *rtp.Packet) {
			t := audio
			if kind == webrtc.RTPCodecTypeVideo {
				t = video
			}
			_ = media.Forward(t, p)
		}
		// The partner's receiver lost the picture: the picture is its own,
		// so ask it for a keyframe.
		cfg.OnKeyframeRequest = askPartner
	case n.bridge != nil:
		cfg.VideoRTP, cfg.AudioRTP = n.bridge.Tracks()
		c.feed = n.bridge.NewFeed(askPartner)
		cfg.OnRTP = c.feed.WriteRTP
		cfg.OnKeyframeRequest = n.bridge.RequestKeyframe
	}
	return func(s *media.Session) { sess.Store(s) }, nil
}

// ConnectBrowser answers the page's WebRTC offer with the node's bridge: from
// then on the page's camera and microphone go to every call, and every call's
// stranger to the page, across Next, with no renegotiation. A new connection
// (a page reload, a second tab) replaces the previous one.
func (n *Node) ConnectBrowser(ctx context.Context, offer string) (string, error) {
	if n.bridge == nil {
		return "", ErrNoBridge
	}
	if n.ctx.Err() != nil {
		return "", ErrClosed
	}
	answer, err := n.bridge.Connect(ctx, offer)
	if errors.Is(err, media.ErrClosed) {
		return "", ErrClosed
	}
	if err == nil {
		n.hub.poke()
	}
	return answer, err
}

// BridgeStats are the browser bridge's counters (zero without a bridge).
func (n *Node) BridgeStats() media.BridgeStats {
	if n.bridge == nil {
		return media.BridgeStats{}
	}
	return n.bridge.Stats()
}

// SendChat sends a chat line to the current partner.
func (n *Node) SendChat(text string) error {
	text = strings.TrimSpace(text)
	if text == "" {
		return fmt.Errorf("%w: empty chat message", errBadRequest)
	}
	sess, err := n.partnerSession()
	if err != nil {
		return err
	}
	if err := sess.SendChat(text); err != nil {
		return err
	}
	n.hub.publish("chat", chatEvent{From: "you", Text: text})
	return nil
}

// SendTyping tells the current partner whether the user is typing.
func (n *Node) SendTyping(typing bool) error {
	sess, err := n.partnerSession()
	if err != nil {
		return err
	}
	return sess.SendTyping(typing)
}

// partnerSession is the session of the current call.
func (n *Node) partnerSession() (*media.Session, error) {
	var sess *media.Session
	if err := n.query(func() {
		if n.call != nil {
			sess = n.call.sess
		}
	}); err != nil {
		return nil, err
	}
	if sess == nil {
		return nil, ErrNoPartner
	}
	return sess, nil
}

// onChat handles a chat line from the partner. Loop only.
func (n *Node) onChat(c *call, text string) {
	if n.call != c {
		return
	}
	n.log.Debug("chat", "from", c.peer, "bytes", len(text))
	n.hub.publish("chat", chatEvent{From: "stranger", Text: text})
	if n.cfg.Mirror {
		sess := c.sess
		n.goAsync(func() { _ = sess.SendChat(text) })
	}
}

// onPeerMessage handles the partner's hello (interests) and typing. Loop
// only.
func (n *Node) onPeerMessage(c *call, m media.Message) {
	if n.call != c {
		return
	}
	switch m.Kind {
	case media.MessageHello:
		c.partnerInterests = discovery.NormalizeInterests(m.Interests)
		c.shared = sharedInterests(n.interests, c.partnerInterests)
		n.hub.poke()
		if g := n.cfg.Greeting; g != "" && !c.greeted {
			c.greeted = true
			sess := c.sess
			n.goAsync(func() {
				if err := sess.SendChat(g); err != nil {
					n.log.Debug("greeting not sent", "err", err)
				}
			})
		}
	case media.MessageTyping:
		n.hub.publish("typing", typingEvent{Typing: m.Typing})
	}
}

// sharedInterests lists the tags in both lists, in a's order.
func sharedInterests(a, b []string) []string {
	in := make(map[string]bool, len(b))
	for _, s := range b {
		in[s] = true
	}
	var out []string
	for _, s := range a {
		if in[s] {
			out = append(out, s)
		}
	}
	return out
}
