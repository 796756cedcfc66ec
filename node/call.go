package node

import (
	"encoding/binary"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"serendip/discovery"
	"serendip/media"
)

// maxHistory bounds the call records a node keeps.
const maxHistory = 100

// callLength is how long a bot stays in a call: d, or with spread a length
// in [d/2, 3d/2) taken from the match id, so that both partners draw the
// same one (each bot hangs up on its own; two draws would end the call at
// the shorter).
func callLength(d time.Duration, spread bool, id discovery.MatchID) time.Duration {
	if !spread || d <= 1 {
		return d
	}
	return d/2 + time.Duration(binary.BigEndian.Uint64(id[:8])%uint64(d))
}

// callTag protects the connection to the partner of a match in the
// connection manager until the call ends: the signalling stream lives on
// it, and a trim would end the call (a node in a crowded shard, or with the
// harness's small connection limits, trims often).
const callTag = "serendip-call"

// byeGrace is how long a call whose media failed waits for the partner's bye
// before it ends as "media failed".
const byeGrace = 300 * time.Millisecond

// CallRecord describes one finished call.
type CallRecord struct {
	MatchID   string    `json:"match_id"`
	Partner   string    `json:"partner"`
	Offerer   bool      `json:"offerer"`
	Connected bool      `json:"connected"`
	Reason    string    `json:"reason"`
	MatchedAt time.Time `json:"matched_at"`
	EndedAt   time.Time `json:"ended_at"`
	// SearchMillis is the time from the start of the search to the match.
	SearchMillis int64 `json:"search_ms"`
	// SetupMillis is the time from match to connected media, and
	// FirstFrameMillis from match to the partner's first video frame.
	SetupMillis      int64 `json:"setup_ms"`
	FirstFrameMillis int64 `json:"first_frame_ms"`
	// Path is how the media travelled (see MediaState.Path).
	Path                 string `json:"path"`
	VideoFramesReceived  uint64 `json:"video_frames_received"`
	AudioPacketsReceived uint64 `json:"audio_packets_received"`
	BytesReceived        uint64 `json:"bytes_received"`
}

// call is the state of one call. Its fields are owned by the loop, except
// sess (safe for concurrent use) and stream (set once, on the loop, before any
// goroutine reads it).
type call struct {
	id        discovery.MatchID
	peer      peer.ID
	offerer   bool
	sess      *media.Session
	stream    *signalStream
	matchedAt time.Time
	// searchedFrom is when the search that led to this match began.
	searchedFrom time.Time

	connected   bool
	connectedAt time.Time
	hangup      *time.Timer
	ended       bool

	// feed carries the partner's media to the page (nil without a bridge).
	feed *media.Feed
	// partnerInterests come in the partner's hello; shared are those this
	// node has too. greeted: Config.Greeting was said.
	partnerInterests, shared []string
	greeted                  bool
	// failing: the media failed; the call ends after byeGrace.
	failing bool
}

// send is the session's Signaler: it writes on the call's stream, which is
// always attached before the session starts producing signals.
func (c *call) send(sig media.Signal) error {
	if c.stream == nil {
		return errNoStream
	}
	return c.stream.send(sig)
}

// startCall sets up the call for a new match. Loop only.
func (n *Node) startCall(p peer.ID, id discovery.MatchID, offerer bool) {
	if n.call != nil {
		// The matcher never matches twice; if it did, the old call goes.
		n.endCall(n.call, "replaced", true, false)
	}
	c := &call{id: id, peer: p, offerer: offerer, matchedAt: time.Now(), searchedFrom: n.searchSince}
	role := media.Answerer
	if offerer {
		role = media.Offerer
	}
	scfg := media.SessionConfig{
		Role:       role,
		Send:       c.send,
		VideoFile:  n.cfg.VideoFile,
		AudioFile:  n.cfg.AudioFile,
		RecordDir:  n.cfg.RecordDir,
		RecordName: time.Now().UTC().Format("20060102-150405") + "-" + id.String(),
		Interests:  hello(n.interests),
		OnState:    func(s media.State) { n.post(func() { n.onMediaState(c, s) }) },
		OnChat:     func(text string) { n.post(func() { n.onChat(c, text) }) },
		OnMessage:  func(m media.Message) { n.post(func() { n.onPeerMessage(c, m) }) },
		Logger:     n.log.With("match", id.String()),
		TextOnly:   n.cfg.TextOnly,
	}
	ready, err := n.callMedia(c, &scfg)
	var sess *media.Session
	if err == nil {
		sess, err = n.engine.NewSession(scfg)
	}
	if err != nil {
		if c.feed != nil {
			c.feed.Close()
		}
		n.log.Error("call not started", "peer", p, "err", err)
		n.step(discovery.CallEnded{ID: id, Rematch: true})
		return
	}
	ready(sess)
	c.sess = sess
	n.call = c
	n.h.ConnManager().Protect(p, callTag)
	n.log.Info("matched", "peer", p, "match", id.String(), "offerer", offerer)
	n.hub.publish("matched", matchedEvent{Partner: p.String(), MatchID: id.String()})
	if !offerer {
		return // the offerer opens the stream; handleSignalStream attaches it
	}
	n.goAsync(func() {
		ss, err := n.openSignal(n.ctx, p, id.String())
		n.post(func() {
			if err != nil {
				n.log.Debug("signal stream not opened", "peer", p, "err", err)
				n.endCall(c, "partner unreachable", false, true)
				return
			}
			if n.call != c || c.stream != nil {
				ss.close()
				return
			}
			n.attach(c, ss)
		})
	})
}

// attach binds the signalling stream to the call and starts the session.
// Loop only.
func (n *Node) attach(c *call, ss *signalStream) {
	c.stream = ss
	n.goAsync(func() { n.readSignals(c, ss) })
	if c.offerer {
		n.goAsync(func() {
			if err := c.sess.Start(); err != nil {
				n.log.Debug("offer failed", "peer", c.peer, "err", err)
				n.post(func() { n.endCall(c, "offer failed", true, true) })
			}
		})
	}
}

// onMediaState follows the session's connection. Loop only.
func (n *Node) onMediaState(c *call, s media.State) {
	if n.call != c {
		return
	}
	switch s {
	case media.StateConnected:
		if c.connected {
			return
		}
		c.connected = true
		c.connectedAt = time.Now()
		n.log.Info("call connected", "peer", c.peer, "setup", c.connectedAt.Sub(c.matchedAt))
		n.hub.poke()
		n.step(discovery.CallStarted{ID: c.id})
		if d := callLength(n.cfg.CallTime, n.cfg.CallTimeSpread, c.id); d > 0 {
			c.hangup = time.AfterFunc(d, func() {
				n.post(func() {
					if n.call == c {
						n.step(discovery.Next{})
					}
				})
			})
		}
	case media.StateFailed, media.StateClosed:
		// A partner who hangs up closes its connection right after its bye,
		// and the close may overtake the bye: give the bye a moment, so the
		// call ends with the partner's reason (the page shows it).
		if c.failing {
			return
		}
		c.failing = true
		time.AfterFunc(byeGrace, func() {
			n.post(func() { n.endCall(c, "media failed", true, true) })
		})
	}
}

// endCall hangs up: a bye (unless the partner already left), then the stream
// and the session close on their own goroutine. tellMatcher is false when the
// matcher itself asked for the end. Loop only.
func (n *Node) endCall(c *call, reason string, bye, tellMatcher bool) {
	if c.ended || n.call != c {
		return
	}
	c.ended = true
	n.call = nil
	n.h.ConnManager().Unprotect(c.peer, callTag)
	if c.hangup != nil {
		c.hangup.Stop()
	}
	if c.feed != nil {
		c.feed.Close()
	}
	by, why := endedBy(reason)
	n.hub.publish("ended", endedEvent{Partner: c.peer.String(), Reason: why, By: by, Connected: c.connected})
	n.last = c.sess.Stats()
	if c.connected {
		n.calls++
	}
	n.lastEnd = reason
	n.lastPath = ""
	if c.connected {
		n.lastPath = c.sess.Path()
	}
	rec := CallRecord{
		Path:    n.lastPath,
		MatchID: c.id.String(), Partner: c.peer.String(), Offerer: c.offerer,
		Connected: c.connected, Reason: reason, MatchedAt: c.matchedAt, EndedAt: time.Now(),
		VideoFramesReceived: n.last.VideoFramesReceived, AudioPacketsReceived: n.last.AudioPacketsReceived,
		BytesReceived: n.last.BytesReceived,
	}
	if !c.searchedFrom.IsZero() {
		rec.SearchMillis = c.matchedAt.Sub(c.searchedFrom).Milliseconds()
	}
	if c.connected {
		rec.SetupMillis = c.connectedAt.Sub(c.matchedAt).Milliseconds()
	}
	if t := n.last.FirstVideoAt; !t.IsZero() {
		rec.FirstFrameMillis = t.Sub(c.matchedAt).Milliseconds()
	}
	n.history = append(n.history, rec)
	if len(n.history) > maxHistory {
		n.history = n.history[1:]
	}
	n.log.Info("call ended", "peer", c.peer, "reason", reason, "connected", c.connected,
		"video_frames", n.last.VideoFramesReceived, "audio_packets", n.last.AudioPacketsReceived)
	ss := c.stream
	n.goAsync(func() {
		if ss != nil {
			if bye {
				_ = ss.send(media.Signal{Kind: media.SignalBye, Reason: reason})
			}
			ss.close()
		}
		if err := c.sess.Close(); err != nil {
			n.log.Debug("session close", "err", err)
		}
		<-c.sess.Done() // its last callback has returned

	})
	if tellMatcher {
		// A call that never connected was no call: search on regardless.
		n.step(discovery.CallEnded{ID: c.id, Rematch: n.cfg.Auto || !c.connected})
	}
}

// hello is what a session may carry of a node's interests in its hello.
func hello(interests []string) []string {
	if len(interests) > media.MaxInterests {
		interests = interests[:media.MaxInterests]
	}
	out := make([]string, 0, len(interests))
	for _, in := range interests {
		if len(in) <= media.MaxInterestSize {
			out = append(out, in)
		}
	}
	return out
}
