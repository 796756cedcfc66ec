package main

import (
	"context"
	crand "crypto/rand"
	"embed"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"serendip/internal/identity"
	"serendip/node"
	"serendip/relay"
)

// The demo bot's camera and microphone: copies of testdata/clip.ivf and
// clip.ogg (see testdata/README.md), so an installed binary has them too.
//
//go:embed clips/clip.ivf clips/clip.ogg
var clips embed.FS

const (
	greetingClip   = "Hi! I'm a demo bot, playing a test pattern and a tone. Press Next (or Esc) to meet the mirror bot."
	greetingMirror = "Hi! I'm the mirror bot: you see and hear yourself through me, and I repeat what you type. Press Next (or Esc) to meet the other bot."
)

// runDemo runs a whole small network in this process: a relay, two bots
// (one plays the test clip and says hello; one mirrors the user's own video
// and chat back) and the user's node with the web UI. All on loopback, on a
// network name of its own, so it never meets anyone else.
func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	httpAddr := fs.String("http", "127.0.0.1:7373", "address of your web UI")
	dataDir := fs.String("data-dir", "", "keep your node's identity and blocklist here (default: a temporary directory, removed on exit)")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	loopback := fs.Bool("bridge-loopback", false, "carry the page's media over loopback only (for a browser run with --allow-loopback-in-peer-connection, as the tests do)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("demo: --http %s: %w (is another serendip running? try --http 127.0.0.1:0)", *httpAddr, err)
	}
	defer ln.Close()

	work, err := os.MkdirTemp("", "serendip-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(work)
	video, audio, err := writeClips(work)
	if err != nil {
		return err
	}
	// Your identity persists only with --data-dir (identity.Load("") is a
	// new one every time).
	key, err := identity.Load(*dataDir)
	if err != nil {
		return err
	}
	if *dataDir == "" {
		*dataDir = filepath.Join(work, "you")
	}

	d := &demo{log: log}
	defer d.close()
	var suffix [4]byte
	_, _ = crand.Read(suffix[:])
	d.network = "demo-" + hex.EncodeToString(suffix[:])
	if err := d.startRelay(); err != nil {
		return err
	}
	clipBot, err := d.startNode("clip-bot", func(c *node.Config) {
		c.VideoFile, c.AudioFile = video, audio
		c.Greeting = greetingClip
		bot(c)
	})
	if err != nil {
		return err
	}
	mirrorBot, err := d.startNode("mirror-bot", func(c *node.Config) {
		c.Mirror = true
		c.Greeting = greetingMirror
		bot(c)
	})
	if err != nil {
		return err
	}
	// The bots are there for the user: they never call each other.
	if err := clipBot.Block(mirrorBot.Host().ID()); err != nil {
		return err
	}
	if err := mirrorBot.Block(clipBot.Host().ID()); err != nil {
		return err
	}
	you, err := d.startNode("you", func(c *node.Config) {
		c.DataDir = *dataDir
		c.BridgeLoopbackOnly = *loopback
	}, libp2p.Identity(key))
	if err != nil {
		return err
	}

	srv := &http.Server{Handler: you.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	url := "http://" + ln.Addr().String()
	if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP.IsLoopback() {
		url = fmt.Sprintf("http://localhost:%d", a.Port)
	}
	fmt.Printf("serendip demo: a relay, two bots and your node, all in this process (network %q)\n", d.network)
	fmt.Printf("  clip bot    plays a test pattern and a tone, and says hello in the chat\n")
	fmt.Printf("  mirror bot  sends you your own video and sound, and echoes what you type\n\n")
	fmt.Printf("open %s in Chrome, Firefox or Safari, allow the camera, and press Start.\n", url)
	fmt.Printf("Ctrl-C stops it.\n")
	<-ctx.Done()
	fmt.Println("\nserendip demo stopping")
	return nil
}

// bot makes a demo bot: it searches all the time and does not mind meeting
// the same person again (with only two bots, a person who pressed Next twice
// is back at the first one; their own node still never returns to the
// stranger they just left).
func bot(c *node.Config) {
	c.Auto = true
	c.Matcher.RecentPartners = 0
}

// writeClips puts the embedded clips where the file sources can open them.
func writeClips(dir string) (video, audio string, err error) {
	for _, name := range []string{"clip.ivf", "clip.ogg"} {
		b, err := clips.ReadFile("clips/" + name)
		if err != nil {
			return "", "", fmt.Errorf("demo: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return "", "", fmt.Errorf("demo: %w", err)
		}
	}
	return filepath.Join(dir, "clip.ivf"), filepath.Join(dir, "clip.ogg"), nil
}

// demo owns the demo's hosts and services and closes them in reverse order.
type demo struct {
	log       *slog.Logger
	network   string
	bootstrap []peer.AddrInfo
	closers   []func()
}

func (d *demo) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
}

func (d *demo) newHost(opts ...libp2p.Option) (host.Host, error) {
	opts = append(opts, libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"))
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("demo: host: %w", err)
	}
	d.closers = append(d.closers, func() { _ = h.Close() })
	return h, nil
}

func (d *demo) startRelay() error {
	h, err := d.newHost()
	if err != nil {
		return err
	}
	cfg := relay.DefaultConfig()
	cfg.Network = d.network
	cfg.PresenceTTL = node.LocalConfig().Matcher.PresenceTTL
	cfg.Logger = d.log.With("part", "relay")
	r, err := relay.New(h, cfg)
	if err != nil {
		return err
	}
	d.closers = append(d.closers, func() { _ = r.Close() })
	d.bootstrap = []peer.AddrInfo{{ID: h.ID(), Addrs: h.Addrs()}}
	return nil
}

func (d *demo) startNode(name string, mod func(*node.Config), opts ...libp2p.Option) (*node.Node, error) {
	h, err := d.newHost(opts...)
	if err != nil {
		return nil, err
	}
	cfg := node.LocalConfig()
	cfg.Network = d.network
	cfg.Bootstrap = d.bootstrap
	cfg.Logger = d.log.With("node", name)
	mod(&cfg)
	n, err := node.New(h, cfg)
	if err != nil {
		return nil, fmt.Errorf("demo: %s: %w", name, err)
	}
	d.closers = append(d.closers, func() { _ = n.Close() })
	return n, nil
}
