package node

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"serendip/discovery"
	"serendip/media"
)

// maxHistory bounds the call records a node keeps.
const maxHistory = 100

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
	SetupMillis          int64  `json:"setup_ms"`
	FirstFrameMillis     int64  `json:"first_frame_ms"`
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
	sess, err := n.engine.NewSession(media.SessionConfig{
		Role:       role,
		Send:       c.send,
		VideoFile:  n.cfg.VideoFile,
		AudioFile:  n.cfg.AudioFile,
		RecordDir:  n.cfg.RecordDir,
		RecordName: time.Now().UTC().Format("20060102-150405") + "-" + id.String(),
		OnState:    func(s media.State) { n.post(func() { n.onMediaState(c, s) }) },
		OnChat:     func(text string) { n.log.Info("chat", "from", p, "text", text) },
		Logger:     n.log.With("match", id.String()),
	})
	if err != nil {
		n.log.Error("call not started", "peer", p, "err", err)
		n.step(discovery.CallEnded{ID: id, Rematch: true})
		return
	}
	c.sess = sess
	n.call = c
	n.log.Info("matched", "peer", p, "match", id.String(), "offerer", offerer)
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
		n.step(discovery.CallStarted{ID: c.id})
		if d := n.cfg.CallTime; d > 0 {
			c.hangup = time.AfterFunc(d, func() {
				n.post(func() {
					if n.call == c {
						n.step(discovery.Next{})
					}
				})
			})
		}
	case media.StateFailed, media.StateClosed:
		n.endCall(c, "media failed", true, true)
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
	if c.hangup != nil {
		c.hangup.Stop()
	}
	n.last = c.sess.Stats()
	if c.connected {
		n.calls++
	}
	n.lastEnd = reason
	rec := CallRecord{
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
