package node_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"serendip/media"
	"serendip/node"
)

func postPrivacy(t *testing.T, h http.Handler, on bool) (int, node.State) {
	t.Helper()
	body, _ := json.Marshal(map[string]bool{"private": on})
	req := httptest.NewRequest("POST", "http://127.0.0.1/api/privacy", bytes.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var st node.State
	_ = json.Unmarshal(rec.Body.Bytes(), &st)
	return rec.Code, st
}

// TestPrivacySwitch: the page's privacy switch turns relay-only ICE on and
// off where relays can carry media, and is refused on a loopback network.
func TestPrivacySwitch(t *testing.T) {
	if testing.Short() {
		t.Skip("real libp2p hosts; skipped in -short")
	}
	nw := newNetwork(t)

	cfg := node.LocalConfig()
	cfg.Network = nw.name
	cfg.Bootstrap = []peer.AddrInfo{nw.relay}
	cfg.Media = media.DefaultEngineConfig() // real interfaces: TURN possible
	n, err := node.New(newHost(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	h := n.Handler()
	if st := state(t, n); st.Private || !st.PrivacyAvailable {
		t.Fatalf("new node: private %v, available %v; want off and available", st.Private, st.PrivacyAvailable)
	}
	if code, st := postPrivacy(t, h, true); code != http.StatusOK || !st.Private {
		t.Fatalf("switch on: %d, private %v", code, st.Private)
	}
	if code, st := postPrivacy(t, h, false); code != http.StatusOK || st.Private {
		t.Fatalf("switch off: %d, private %v", code, st.Private)
	}

	local, _ := nw.bot(0)
	if st := state(t, local); st.PrivacyAvailable {
		t.Fatal("a loopback-only node offers privacy mode")
	}
	if code, _ := postPrivacy(t, local.Handler(), true); code != http.StatusConflict {
		t.Fatalf("privacy on a loopback-only node: status %d, want 409", code)
	}
}
