package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNodeBadInvocations: each mistake gives one line naming the problem,
// before any network is touched.
func TestNodeBadInvocations(t *testing.T) {
	dir := t.TempDir()
	notIVF := filepath.Join(dir, "notes.ivf")
	if err := os.WriteFile(notIVF, []byte("these are not video frames"), 0o644); err != nil {
		t.Fatal(err)
	}
	clip := filepath.Join("..", "..", "testdata", "clip.ogg")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--no-such-flag"}, "no-such-flag"},
		{[]string{"--call-seconds", "soon"}, "call-seconds"},
		{[]string{"--call-seconds", "-1"}, "call-seconds"},
		{[]string{"stray"}, "stray"},
		{[]string{"--video", filepath.Join(dir, "missing.ivf")}, "missing.ivf"},
		{[]string{"--video", notIVF}, "notes.ivf"},
		{[]string{"--audio", notIVF}, "notes.ivf"},
		{[]string{"--video", clip}, "clip.ogg"},
		{[]string{"--bootstrap", "/ip4/127.0.0.1/tcp/1"}, "p2p"},
		{[]string{"--bootstrap", "not-a-multiaddr"}, "not-a-multiaddr"},
		{[]string{"--log-level", "loud"}, "loud"},
		{[]string{"--http", "256.0.0.1:99999"}, "--http"},
		{[]string{"--shard-target", "1"}, "Target"},
	}
	for _, c := range cases {
		err := runNode(context.Background(), append([]string{"--local"}, c.args...))
		if err == nil {
			t.Errorf("serendip node %v: no error", c.args)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, c.want) {
			t.Errorf("serendip node %v: error %q; want one line naming %q", c.args, msg, c.want)
		}
	}
}

func TestRelayBadInvocations(t *testing.T) {
	for _, args := range [][]string{{"--listen", "nonsense"}, {"--bootstrap", "/ip4/1.2.3.4/tcp/1"}, {"--nope"}} {
		err := runRelay(context.Background(), args)
		if err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("serendip relay %v: error %v; want one line", args, err)
		}
	}
}
