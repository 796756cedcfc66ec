package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"serendip/media"
	"serendip/web"
)

// The page's event stream (GET /api/events) is Server-Sent Events; each
// event's data is one JSON object:
//
//	state    UIState, on every change and every second
//	matched  {"partner", "match_id"}: a stranger was found; the call is being set up
//	chat     {"from": "you"|"stranger", "text"}
//	typing   {"typing": bool}: the stranger is (not) typing
//	ended    {"partner", "reason", "by": "you"|"stranger"|"network", "connected"}
const (
	// eventBuffer bounds the events queued for one slow page; more close its
	// stream (the page reconnects and gets the state afresh).
	eventBuffer = 256
	// stateEvery refreshes the state (online estimate, counters) this often.
	stateEvery = time.Second
	// keepAliveEvery sends an SSE comment so proxies keep the stream open.
	keepAliveEvery = 15 * time.Second
	// maxBridgeBody bounds a browser's SDP offer.
	maxBridgeBody = 256 << 10
	// bridgeTimeout bounds answering a browser's offer.
	bridgeTimeout = 10 * time.Second
)

// errBadRequest marks an API request that makes no sense (status 400).
var errBadRequest = errors.New("bad request")

// UIState is the state the page shows: State and what only the page needs.
type UIState struct {
	State
	// Interests are this node's tags; SharedInterests those the partner
	// shares (from its hello).
	Interests       []string `json:"interests"`
	SharedInterests []string `json:"shared_interests"`
	// OnlineEstimate counts the people this node knows of: the strangers
	// searching in its pool, its partner and the user. An estimate: people in
	// calls elsewhere are not seen.
	OnlineEstimate int `json:"online_estimate"`
	// Bridge: the node takes its media from a page (no media files).
	// BrowserConnected: a page's media connection is up.
	Bridge           bool `json:"bridge"`
	BrowserConnected bool `json:"browser_connected"`
}

type chatEvent struct {
	From string `json:"from"`
	Text string `json:"text"`
}

type typingEvent struct {
	Typing bool `json:"typing"`
}

type matchedEvent struct {
	Partner string `json:"partner"`
	MatchID string `json:"match_id"`
}

type endedEvent struct {
	Partner   string `json:"partner"`
	Reason    string `json:"reason"`
	By        string `json:"by"`
	Connected bool   `json:"connected"`
}

// endedBy tells who ended a call from the reason endCall was given.
func endedBy(reason string) (by, why string) {
	if r, ok := strings.CutPrefix(reason, "partner: "); ok {
		return "stranger", r
	}
	switch reason {
	case "next", "stop", "blocked", "replaced":
		return "you", reason
	}
	return "network", reason
}

// UIState returns what the page shows.
func (n *Node) UIState() (UIState, error) {
	var st UIState
	err := n.query(func() { st = n.uiState() })
	return st, err
}

func (n *Node) uiState() UIState {
	st := UIState{State: n.state(), Interests: n.interests, Bridge: n.bridge != nil}
	if st.Interests == nil {
		st.Interests = []string{}
	}
	st.SharedInterests = []string{}
	if c := n.call; c != nil && c.shared != nil {
		st.SharedInterests = c.shared
	}
	st.OnlineEstimate = st.Available + 1
	if st.Partner != "" {
		st.OnlineEstimate++
	}
	st.BrowserConnected = n.BridgeStats().Connected
	return st
}

type uiEvent struct {
	name string
	data any // nil: only the state changed
}

// hub fans the node's events out to the pages listening. Publishing never
// blocks: a page too slow to keep up loses its stream.
type hub struct {
	mu   sync.Mutex
	subs map[chan uiEvent]struct{}
}

func newHub() *hub { return &hub{subs: make(map[chan uiEvent]struct{})} }

func (h *hub) subscribe() chan uiEvent {
	ch := make(chan uiEvent, eventBuffer)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch
}

func (h *hub) unsubscribe(ch chan uiEvent) {
	h.mu.Lock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
	h.mu.Unlock()
}

func (h *hub) publish(name string, data any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- uiEvent{name, data}:
		default:
			delete(h.subs, ch) // too slow: its stream ends
			close(ch)
		}
	}
}

// poke tells the pages that the state changed.
func (h *hub) poke() { h.publish("", nil) }

// webRoutes adds the page and its API to mux.
func (n *Node) webRoutes(mux *http.ServeMux) {
	static := http.FileServerFS(web.FS())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; media-src 'self' blob: mediastream:; "+
			"connect-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		static.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /api/events", n.serveEvents)
	mux.HandleFunc("GET /api/ui", func(w http.ResponseWriter, r *http.Request) {
		st, err := n.UIState()
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /api/bridge", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Type string `json:"type"`
			SDP  string `json:"sdp"`
		}
		if err := readBodyLimit(r, &body, maxBridgeBody); err != nil || body.Type != "offer" || body.SDP == "" {
			writeJSON(w, http.StatusBadRequest, apiError{"want {\"type\": \"offer\", \"sdp\": \"...\"}"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), bridgeTimeout)
		defer cancel()
		answer, err := n.ConnectBrowser(ctx, body.SDP)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"type": "answer", "sdp": answer})
	})
	mux.HandleFunc("POST /api/chat", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Text string `json:"text"`
		}
		if !readBody(w, r, &body) {
			return
		}
		n.respond(w, n.SendChat(body.Text))
	})
	mux.HandleFunc("POST /api/typing", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Typing bool `json:"typing"`
		}
		if !readBody(w, r, &body) {
			return
		}
		n.respond(w, n.SendTyping(body.Typing))
	})
}

// serveEvents streams the page's events (Server-Sent Events) until the page
// goes or the node closes.
func (n *Node) serveEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeJSON(w, http.StatusInternalServerError, apiError{"streaming not supported"})
		return
	}
	ch := n.hub.subscribe()
	defer n.hub.unsubscribe(ch)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	var last []byte
	send := func(name string, data any) bool {
		b, err := json.Marshal(data)
		if err != nil {
			return false
		}
		if name == "state" {
			if bytes.Equal(b, last) {
				return true
			}
			last = b
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	sendState := func() bool {
		st, err := n.UIState()
		return err == nil && send("state", st)
	}
	if _, err := io.WriteString(w, "retry: 1000\n\n"); err != nil || !sendState() {
		return
	}
	tick := time.NewTicker(stateEvery)
	defer tick.Stop()
	lastWrite := time.Now()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-n.ctx.Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return // too slow; the page reconnects
			}
			if ev.data != nil && !send(ev.name, ev.data) {
				return
			}
			if !sendState() {
				return
			}
			lastWrite = time.Now()
		case <-tick.C:
			if !sendState() {
				return
			}
			if time.Since(lastWrite) > keepAliveEvery {
				if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
					return
				}
				flusher.Flush()
				lastWrite = time.Now()
			}
		}
	}
}

// guard refuses requests from other web sites (a page elsewhere posting to
// the node on localhost) and DNS rebinding (a host name that is not
// localhost): the API needs no password only because nothing but the user's
// own page and tools can reach it.
func guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !localHost(r.Host) {
			writeJSON(w, http.StatusForbidden, apiError{"host " + r.Host + " refused: use localhost or an IP address"})
			return
		}
		if o := r.Header.Get("Origin"); o != "" {
			u, err := url.Parse(o)
			if err != nil || u.Host != r.Host {
				writeJSON(w, http.StatusForbidden, apiError{"cross-origin request refused"})
				return
			}
		}
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			writeJSON(w, http.StatusForbidden, apiError{"cross-site request refused"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// localHost reports whether a Host header names this machine without DNS:
// an IP address, localhost or a name under .localhost.
func localHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	return net.ParseIP(strings.Trim(host, "[]")) != nil
}

// readBodyLimit is readBody with its own size limit.
func readBodyLimit(r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return errors.New("bad request body: " + err.Error())
	}
	return nil
}

// chatStatus maps chat errors to HTTP status codes.
func chatStatus(err error) (int, bool) {
	switch {
	case errors.Is(err, errBadRequest), errors.Is(err, media.ErrChatTooLong), errors.Is(err, media.ErrMalformed):
		return http.StatusBadRequest, true
	case errors.Is(err, media.ErrNotConnected), errors.Is(err, media.ErrClosed), errors.Is(err, ErrNoBridge):
		return http.StatusConflict, true
	}
	return 0, false
}
