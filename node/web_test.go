package node_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestWebAPI checks the page's routes without a browser: the page itself,
// the event stream's first state, the errors of chat and bridge calls, and
// the refusal of other web sites and of DNS rebinding.
func TestWebAPI(t *testing.T) {
	nw := newNetwork(t)
	u := nw.uiNode()
	bot, _ := nw.bot(0)
	botSrv := httptest.NewServer(bot.Handler())
	defer botSrv.Close()

	do := func(method, url, body string, hdr map[string]string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			if k == "Host" {
				req.Host = v
			} else {
				req.Header.Set(k, v)
			}
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	code, page := do("GET", u.url+"/", "", nil)
	if code != 200 || !strings.Contains(page, `id="remote-video"`) {
		t.Fatalf("GET /: %d, %.80q", code, page)
	}
	for _, c := range []struct {
		method, path, body string
		hdr                map[string]string
		want               int
	}{
		{"POST", "/api/chat", `{"text":"hi"}`, nil, http.StatusConflict},     // no call
		{"POST", "/api/chat", `{"text":"  "}`, nil, http.StatusBadRequest},   // empty
		{"POST", "/api/chat", `{"txt":"hi"}`, nil, http.StatusBadRequest},    // unknown field
		{"POST", "/api/typing", `{"typing":true}`, nil, http.StatusConflict}, // no call
		{"POST", "/api/bridge", `{"type":"answer","sdp":"x"}`, nil, http.StatusBadRequest},
		{"POST", "/api/bridge", `{"type":"offer","sdp":"not sdp"}`, nil, http.StatusBadRequest},
		{"PUT", "/", "", nil, http.StatusMethodNotAllowed},
		{"GET", "/api/ui", "", nil, http.StatusOK},
		{"POST", "/api/start", `{}`, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"POST", "/api/start", `{}`, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"GET", "/api/state", "", map[string]string{"Host": "rebound.example:7373"}, http.StatusForbidden},
		{"GET", "/api/state", "", map[string]string{"Host": "localhost:7373"}, http.StatusOK},
	} {
		if code, body := do(c.method, u.url+c.path, c.body, c.hdr); code != c.want {
			t.Errorf("%s %s %s %v: %d %s; want %d", c.method, c.path, c.body, c.hdr, code, body, c.want)
		}
	}
	if code, body := do("POST", botSrv.URL+"/api/bridge", `{"type":"offer","sdp":"v=0"}`, nil); code != http.StatusConflict {
		t.Errorf("bridge on a bot: %d %s; want 409", code, body)
	}

	// The event stream starts with the state.
	res, err := http.Get(u.url + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events content type %q", ct)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(10 * time.Second)
	for got := ""; got != "event: state"; {
		select {
		case got = <-lines:
		case <-timeout:
			t.Fatal("no state event")
		}
	}
	if data := <-lines; !strings.Contains(data, `"online_estimate"`) || !strings.Contains(data, `"state":"idle"`) {
		t.Fatalf("state event data %q", data)
	}
}
