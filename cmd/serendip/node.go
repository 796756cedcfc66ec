package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"

	"serendip/internal/identity"
	"serendip/node"
)

func runNode(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	var listen, boot multiFlag
	fs.Var(&boot, "bootstrap", "peer to join through, a multiaddr ending in /p2p/<peer id> (repeatable; default: the public IPFS bootstrap peers)")
	fs.Var(&listen, "listen", "libp2p multiaddr to listen on (repeatable; default TCP and QUIC on a random port)")
	network := fs.String("network", "main", "network name; nodes meet only others on the same network")
	dataDir := fs.String("data-dir", "", "directory for identity and blocklist (default: a new identity every start, nothing saved)")
	httpAddr := fs.String("http", "127.0.0.1:7373", "address of the local web UI and JSON API")
	video := fs.String("video", "", "IVF (VP8) file looped as the camera")
	audio := fs.String("audio", "", "Ogg (Opus) file looped as the microphone")
	textOnly := fs.Bool("text-only", false, "calls carry text chat only: no camera, no media from the page (a text bot)")
	record := fs.String("record", "", "directory to record each call into (one .ivf and one .ogg per call)")
	auto := fs.Bool("auto", false, "search at launch and again after every call (a bot)")
	callSeconds := fs.Float64("call-seconds", 0, "hang up (next) this many seconds after a call connects; 0 = never")
	callSpread := fs.Bool("call-spread", false, "each call lasts between half and one and a half times --call-seconds (taken from the match id: the same on both sides)")
	interests := fs.String("interests", "", "comma-separated interest tags")
	local := fs.Bool("local", false, "a network on this one machine: loopback only, fast timers, no mDNS")
	reach := fs.String("reachability", "auto", "auto (AutoNAT decides), private (behind NAT: use relays at once) or public")
	private := fs.Bool("private", false, "privacy mode: media only through the relays' TURN servers, so a stranger never learns your IP address")
	mdns := fs.Bool("mdns", true, "find peers on the LAN with mDNS (off with --local)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	shardTarget := fs.Int("shard-target", 0, "presence messages a shard should carry per announce interval, which the node hears (0: the default, 16; with --local, 24)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *callSeconds < 0 {
		return errors.New("node: --call-seconds must not be negative")
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	cfg := node.DefaultConfig()
	if *local {
		cfg = node.LocalConfig()
	} else {
		cfg.MDNS = *mdns
	}
	if len(listen) == 0 {
		host := "0.0.0.0"
		if *local {
			host = "127.0.0.1"
		}
		listen = multiFlag{"/ip4/" + host + "/tcp/0", "/ip4/" + host + "/udp/0/quic-v1"}
	}
	cfg.Bootstrap = dht.GetDefaultBootstrapPeerAddrInfos()
	if len(boot) > 0 {
		if cfg.Bootstrap, err = parsePeers(boot); err != nil {
			return err
		}
	}
	if *private {
		if *local {
			return errors.New("node: --private needs TURN on real interfaces; it does not go with --local")
		}
		cfg.Media.RelayOnly = true
	}
	cfg.Network = *network
	cfg.DataDir = *dataDir
	cfg.VideoFile, cfg.AudioFile, cfg.RecordDir = *video, *audio, *record
	cfg.TextOnly = *textOnly
	cfg.Auto = *auto
	cfg.CallTime = time.Duration(*callSeconds * float64(time.Second))
	cfg.CallTimeSpread = *callSpread
	cfg.Interests = strings.Split(*interests, ",")
	if *shardTarget != 0 {
		cfg.ShardTarget = *shardTarget
	}
	cfg.Logger = log
	if err := cfg.Validate(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("node: --http %s: %w", *httpAddr, err)
	}
	key, err := identity.Load(*dataDir)
	if err != nil {
		return err
	}
	hostOpts, err := nodeHostOptions(key, listen, cfg.Bootstrap, *reach)
	if err != nil {
		ln.Close()
		return err
	}
	h, err := libp2p.New(hostOpts...)
	if err != nil {
		ln.Close()
		return fmt.Errorf("node host: %w", err)
	}
	defer h.Close()
	n, err := node.New(h, cfg)
	if err != nil {
		ln.Close()
		return err
	}
	defer n.Close()
	srv := &http.Server{Handler: n.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Printf("serendip node %s on network %q\n", h.ID(), *network)
	fmt.Printf("open http://%s\n", ln.Addr())
	<-ctx.Done()
	log.Info("node stopping")
	return nil
}
