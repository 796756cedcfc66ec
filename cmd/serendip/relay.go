package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/libp2p/go-libp2p"

	"serendip/internal/identity"
	"serendip/relay"
)

func runRelay(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	var listen, boot multiFlag
	fs.Var(&listen, "listen", "multiaddr to listen on (repeatable; default TCP and QUIC on port 4001, all interfaces)")
	fs.Var(&boot, "bootstrap", "another relay to join, as a multiaddr ending in /p2p/<peer id> (repeatable)")
	network := fs.String("network", "main", "Serendip network whose presence topic this relay serves")
	dataDir := fs.String("data-dir", "", "directory for the relay's identity key (default: a new identity every start)")
	addrFile := fs.String("addr-file", "", "write the relay's dialable multiaddrs to this file, one per line")
	turnAddr := fs.String("turn", "", "also serve STUN/TURN on this UDP address (e.g. 0.0.0.0:3478); credentials go only to libp2p peers")
	turnIP := fs.String("turn-ip", "", "public IP to advertise for STUN/TURN (default: the --turn IP)")
	turnTCP := fs.Bool("turn-tcp", true, "also serve TURN over TCP on the --turn port")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(listen) == 0 {
		listen = multiFlag{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	peers, err := parsePeers(boot)
	if err != nil {
		return err
	}
	key, err := identity.Load(*dataDir)
	if err != nil {
		return err
	}
	hostOpts, err := relayHostOptions(key, listen)
	if err != nil {
		return err
	}
	h, err := libp2p.New(hostOpts...)
	if err != nil {
		return fmt.Errorf("relay host: %w", err)
	}
	defer h.Close()
	cfg := relay.DefaultConfig()
	cfg.Network = *network
	cfg.Bootstrap = peers
	cfg.Logger = log
	r, err := relay.New(h, cfg)
	if err != nil {
		return err
	}
	defer r.Close()
	if *turnAddr != "" {
		tc := relay.DefaultTURNConfig()
		tc.Listen, tc.TCP = *turnAddr, *turnTCP
		if *turnIP != "" {
			if tc.PublicIP = net.ParseIP(*turnIP); tc.PublicIP == nil {
				return fmt.Errorf("relay: --turn-ip %q is not an IP address", *turnIP)
			}
		}
		t, err := relay.NewTURN(h, tc, log)
		if err != nil {
			return err
		}
		defer t.Close()
		log.Info("turn ready", "urls", strings.Join(t.URLs(), " "))
	}
	var lines []string
	for _, a := range r.Addrs() {
		lines = append(lines, a.String())
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			return fmt.Errorf("addr file: %w", err)
		}
	}
	for _, l := range lines {
		fmt.Println(l)
	}
	log.Info("relay ready", "peer", h.ID(), "network", *network)
	<-ctx.Done()
	log.Info("relay stopping")
	return nil
}
