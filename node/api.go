package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"serendip/discovery"
)

// State is what GET /api/state returns.
type State struct {
	PeerID  string `json:"peer_id"`
	Network string `json:"network"`
	// State is idle, searching, matched (call being set up) or in_call.
	State   string `json:"state"`
	Partner string `json:"partner"`
	MatchID string `json:"match_id,omitempty"`
	// CallSeconds is how long the current call has had media.
	CallSeconds float64 `json:"call_seconds"`
	// Calls counts completed calls (media connected, then ended).
	Calls int `json:"calls"`
	// Media counts the current call, or the last one when there is none.
	Media MediaState `json:"media"`
	// Available is how many peers this node knows to be searching.
	Available int `json:"available"`
	// Lonely: searching with nobody else available.
	Lonely bool `json:"lonely"`
	// Peers is the number of libp2p peers connected.
	Peers int `json:"peers"`
	// Shard is the presence shard this node is in, "level.index" ("0.0":
	// the whole network on one topic), and ShardTopics how many presence
	// topics it has joined (its shard, ancestors while lonely, shards
	// left a moment ago).
	Shard       string `json:"shard"`
	ShardTopics int    `json:"shard_topics"`
	// ShardPeers is how many of our peers joined our shard's topic, as of
	// the last second or so (below the root; -1 at the root): 0 means the
	// node cannot hear its shard yet.
	ShardPeers int `json:"shard_peers"`
	// Private: privacy mode (media through TURN relays only) for the next
	// calls; PrivacyAvailable: it can be switched on (not on a loopback-only
	// network).
	Private          bool `json:"private"`
	PrivacyAvailable bool `json:"privacy_available"`
	// LastEnd is why the last call ended.
	LastEnd string `json:"last_end,omitempty"`
}

// MediaState counts what the stranger sent.
type MediaState struct {
	VideoFramesReceived  uint64 `json:"video_frames_received"`
	AudioPacketsReceived uint64 `json:"audio_packets_received"`
	BytesReceived        uint64 `json:"bytes_received"`
	VideoFramesSent      uint64 `json:"video_frames_sent"`
	AudioPacketsSent     uint64 `json:"audio_packets_sent"`
	// Path is how the media travels: host, srflx, prflx (direct) or relay
	// (through a relay's TURN server); empty before ICE has chosen.
	Path string `json:"path"`
}

// State returns a snapshot of the node.
func (n *Node) State() (State, error) {
	var st State
	err := n.query(func() { st = n.state() })
	return st, err
}

func (n *Node) state() State {
	ms := n.m.Status()
	st := State{
		PeerID:    n.h.ID().String(),
		Network:   n.cfg.Network,
		Calls:     n.calls,
		Available: ms.PoolSize,
		Lonely:    ms.Lonely,
		Peers:     len(n.h.Network().Peers()),
		LastEnd:   n.lastEnd,
		Private:   n.engine.RelayOnly(),

		PrivacyAvailable: n.engine.CanRelayOnly(),
	}
	st.Shard, st.ShardTopics, st.ShardPeers = n.topic.where()
	stats := n.last
	switch ms.State {
	case discovery.StateIdle:
		st.State = "idle"
	case discovery.StateMatched:
		st.State = "matched"
		st.Partner = peer.ID(ms.Partner).String()
		st.MatchID = ms.MatchID.String()
		if c := n.call; c != nil {
			stats = c.sess.Stats()
			if c.connected {
				st.State = "in_call"
				st.CallSeconds = time.Since(c.connectedAt).Seconds()
			}
		}
	default:
		st.State = "searching"
	}
	path := n.lastPath
	if c := n.call; c != nil {
		path = ""
		if c.connected { // before, ICE may still be starting (and racing)
			path = c.sess.Path()
		}
	}
	st.Media = MediaState{
		Path:                 path,
		VideoFramesReceived:  stats.VideoFramesReceived,
		AudioPacketsReceived: stats.AudioPacketsReceived,
		BytesReceived:        stats.BytesReceived,
		VideoFramesSent:      stats.VideoFramesSent,
		AudioPacketsSent:     stats.AudioPacketsSent,
	}
	return st
}

// History returns the node's finished calls, oldest first.
func (n *Node) History() ([]CallRecord, error) {
	var h []CallRecord
	err := n.query(func() { h = append([]CallRecord{}, n.history...) })
	return h, err
}

// Start begins searching for a stranger. Starting while already searching
// is fine; while matched or in a call it is ErrInCall.
func (n *Node) Start(interests []string) error {
	var err error
	qerr := n.query(func() {
		switch n.m.Status().State {
		case discovery.StateIdle:
			n.interests = discovery.NormalizeInterests(interests)
			n.step(discovery.Start{Interests: interests})
		case discovery.StateMatched:
			err = ErrInCall
		}
	})
	return errors.Join(qerr, err)
}

// Next ends the current call, if any, and searches again at once.
func (n *Node) Next() error {
	var err error
	qerr := n.query(func() {
		if n.m.Status().State == discovery.StateIdle {
			err = ErrNotStarted
			return
		}
		n.step(discovery.Next{})
	})
	return errors.Join(qerr, err)
}

// Stop ends the current call, if any, and stops searching.
func (n *Node) Stop() error {
	return n.query(func() { n.step(discovery.Stop{}) })
}

// Block keeps p out of every future match (it is saved in the data dir); an
// empty p means the current partner, whose call ends.
func (n *Node) Block(p peer.ID) error {
	var err error
	qerr := n.query(func() {
		if p == "" {
			if n.call == nil {
				err = ErrNoPartner
				return
			}
			p = n.call.peer
		}
		if err = n.blocks.add(p); err != nil {
			return
		}
		n.step(discovery.Block{Peer: discovery.PeerID(p)})
	})
	return errors.Join(qerr, err)
}

// SetPrivate switches privacy mode for the calls started from now on.
func (n *Node) SetPrivate(on bool) error {
	if err := n.engine.SetRelayOnly(on); err != nil {
		return fmt.Errorf("%w: %w", ErrNoPrivacy, err)
	}
	n.post(func() { n.hub.poke() })
	return nil
}

// maxBody bounds API request bodies.
const maxBody = 16 << 10

// Handler serves the JSON API:
//
//	GET  /api/state
//	GET  /api/calls   finished calls, oldest first
//	GET  /api/metrics message counters (presence, claims, signals) and slow loop steps
//	POST /api/start   optional body {"interests": ["music", ...]}
//	POST /api/next
//	POST /api/stop
//	POST /api/block   optional body {"peer": "<peer id>"} (default: the partner)
//	POST /api/privacy {"private": true|false}: privacy mode from the next call
//
// and the web UI with the calls only it needs (see web.go):
//
//	GET  /            the page (package web)
//	GET  /api/ui      UIState: State plus interests, shared interests, online estimate
//	GET  /api/events  Server-Sent Events: state, matched, chat, typing, ended
//	POST /api/bridge  {"type": "offer", "sdp"} -> {"type": "answer", "sdp"}: the page's media
//	POST /api/chat    {"text": "..."} to the partner
//	POST /api/typing  {"typing": true|false} to the partner
//
// Errors are {"error": "..."} with a fitting status code. Requests from other
// web sites (Origin) and through host names other than localhost (DNS
// rebinding) are refused with 403.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	n.webRoutes(mux)
	mux.HandleFunc("GET /api/state", func(w http.ResponseWriter, r *http.Request) {
		st, err := n.State()
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /api/metrics", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, n.Metrics())
	})
	mux.HandleFunc("GET /api/calls", func(w http.ResponseWriter, r *http.Request) {
		h, err := n.History()
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, h)
	})
	mux.HandleFunc("POST /api/start", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Interests []string `json:"interests"`
		}
		if !readBody(w, r, &body) {
			return
		}
		n.respond(w, n.Start(discovery.NormalizeInterests(body.Interests)))
	})
	mux.HandleFunc("POST /api/next", func(w http.ResponseWriter, r *http.Request) {
		n.respond(w, n.Next())
	})
	mux.HandleFunc("POST /api/stop", func(w http.ResponseWriter, r *http.Request) {
		n.respond(w, n.Stop())
	})
	mux.HandleFunc("POST /api/block", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Peer string `json:"peer"`
		}
		if !readBody(w, r, &body) {
			return
		}
		var p peer.ID
		if body.Peer != "" {
			var err error
			if p, err = peer.Decode(body.Peer); err != nil {
				writeJSON(w, http.StatusBadRequest, apiError{"bad peer id: " + err.Error()})
				return
			}
		}
		n.respond(w, n.Block(p))
	})
	mux.HandleFunc("POST /api/privacy", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Private bool `json:"private"`
		}
		if !readBody(w, r, &body) {
			return
		}
		n.respond(w, n.SetPrivate(body.Private))
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, apiError{"no such API call: " + r.Method + " " + r.URL.Path})
	})
	return guard(mux)
}

type apiError struct {
	Error string `json:"error"`
}

// respond writes the state after a successful action, or the error.
func (n *Node) respond(w http.ResponseWriter, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	st, err := n.State()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	if c, ok := chatStatus(err); ok {
		code = c
	}
	switch {
	case errors.Is(err, ErrClosed):
		code = http.StatusServiceUnavailable
	case errors.Is(err, ErrInCall), errors.Is(err, ErrNotStarted), errors.Is(err, ErrNoPartner), errors.Is(err, ErrNoPrivacy):
		code = http.StatusConflict
	}
	writeJSON(w, code, apiError{err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// readBody decodes an optional JSON body; on failure it answers 400 and
// reports false.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeJSON(w, http.StatusBadRequest, apiError{"bad request body: " + err.Error()})
		return false
	}
	return true
}
