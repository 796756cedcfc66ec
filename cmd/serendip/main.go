// Command serendip runs a Serendip node, a relay, or tools around them.
//
//	serendip demo    a relay, two bots and your node in one process, with the web UI
//	serendip node    join the network, serve the API on localhost, run calls
//	serendip relay   bootstrap, DHT server, circuit relay for the network
//
// Run "serendip <command> -h" for the flags of each.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

const usage = `serendip: random video chat with no central server

usage:
  serendip demo  [flags]   try it: a small network on this machine and the web UI
  serendip node  [flags]   join the network and talk to strangers
  serendip relay [flags]   run a relay (bootstrap, DHT, circuit relay) for others
  serendip sim   [flags]   simulate matching at scale and print the figures
  serendip harness [flags] run many nodes on this machine through a scenario and report

run "serendip <command> -h" for the flags of a command
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "demo":
		err = runDemo(ctx, args)
	case "node":
		err = runNode(ctx, args)
	case "relay":
		err = runRelay(ctx, args)
	case "sim":
		err = runSim(ctx, args)
	case "harness":
		err = runHarness(ctx, args)
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
		return
	default:
		err = fmt.Errorf("unknown command %q (want demo, node, relay, sim or harness)", cmd)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "serendip: %v\n", err)
		os.Exit(1)
	}
}

// parseFlags parses args quietly: a bad flag becomes a one-line error, -h
// prints the flags to stdout.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(os.Stdout)
		fmt.Printf("usage: serendip %s [flags]\n\n", fs.Name())
		fs.PrintDefaults()
		return err
	}
	if err != nil {
		return fmt.Errorf("%s: %w (see serendip %s -h)", fs.Name(), err, fs.Name())
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q (see serendip %s -h)", fs.Name(), fs.Arg(0), fs.Name())
	}
	return nil
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error {
	*m = append(*m, v)
	return nil
}

// parsePeers turns /p2p multiaddrs into address infos, merging addresses of
// the same peer.
func parsePeers(addrs []string) ([]peer.AddrInfo, error) {
	var mas []ma.Multiaddr
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("bad multiaddr %q: %w", s, err)
		}
		mas = append(mas, a)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("bootstrap address without /p2p/<peer id>: %w", err)
	}
	return infos, nil
}

// newLogger logs text to stderr at the given level.
func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad log level %q (want debug, info, warn or error)", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
