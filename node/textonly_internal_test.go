package node

import (
	"errors"
	"testing"

	"serendip/internal/hosttest"
)

// A text-only node has no browser bridge (its calls carry no track, so
// there is nothing to forward to a page), and takes no media of its own.
func TestTextOnlyConfig(t *testing.T) {
	for _, bad := range []func(*Config){
		func(c *Config) { c.VideoFile = "../testdata/clip.ivf" },
		func(c *Config) { c.Mirror = true },
	} {
		c := LocalConfig()
		c.TextOnly = true
		bad(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("text-only config with media passed Validate: %+v", c)
		}
	}
	cfg := LocalConfig()
	cfg.Network = "text-only-test"
	cfg.TextOnly = true
	n, err := New(hosttest.Loopback(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.bridge != nil {
		t.Fatal("a text-only node made a browser bridge")
	}
	if !n.engine.TextOnly() {
		t.Fatal("a text-only node's media engine has pion's RTP interceptors")
	}
	if _, err := n.ConnectBrowser(t.Context(), "v=0"); !errors.Is(err, ErrNoBridge) {
		t.Fatalf("ConnectBrowser on a text-only node: %v, want ErrNoBridge", err)
	}
}
