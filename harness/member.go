package harness

import (
	"context"
	"errors"
	"strings"
	"time"

	"serendip/node"
)

// member is one node under the harness's control, in this process or in a
// child process.
type member interface {
	PeerID() string
	State(ctx context.Context) (node.State, error)
	History(ctx context.Context) ([]node.CallRecord, error)
	// Metrics returns the node's message counters, if the member can tell.
	Metrics(ctx context.Context) (node.Metrics, bool)
	Start(ctx context.Context) error
	Next(ctx context.Context) error
	// Chat sends a chat line to the partner; errNoChat if the node has no
	// way to.
	Chat(ctx context.Context, text string) error
	// Kill ends the node abruptly: its connections drop with no bye.
	Kill() error
	// Close stops the node politely (a bye to its partner, if any).
	Close() error
	// Usage reports a child's CPU time and peak RSS once it has exited.
	Usage() (procUsage, bool)
}

// nodeSpec is what a launcher needs to start one node.
type nodeSpec struct {
	index    int
	auto     bool
	callTime time.Duration // 0: never hang up
	seed     uint64
}

// launcher starts relays and nodes, in this process or as child processes.
type launcher interface {
	// startRelays starts n relays; nodes launched later join through them.
	startRelays(ctx context.Context, n int) error
	launch(ctx context.Context, spec nodeSpec) (member, error)
	// traffic returns the nodes' bytes by protocol class, if known.
	traffic() (classBytes, bool)
	// relayTraffic returns the bytes the relays sent and received.
	relayTraffic() (in, out uint64, ok bool)
	// connections returns how many connections the nodes accepted and
	// dialled, if known.
	connections() (in, out uint64, ok bool)
	// sharedSignatureChecks is how many signature checks the nodes shared.
	sharedSignatureChecks() uint64
	// rss returns the resident memory of everything launched so far.
	rss() (int64, bool)
	close() error
	mode() string
}

// procUsage is CPU time and peak memory of one process.
type procUsage struct {
	CPU    time.Duration
	MaxRSS int64 // bytes
}

// Protocol classes for traffic.
const (
	classPresence = "presence"
	classClaim    = "claim"
	classSignal   = "signal"
	classDHT      = "dht"
	classOther    = "other"
)

var classes = []string{classPresence, classClaim, classSignal, classDHT, classOther}

// classBytes is bytes in and out by protocol class.
type classBytes map[string]inOut

type inOut struct{ In, Out uint64 }

// protocolClass maps a libp2p protocol id to a traffic class.
func protocolClass(proto string) string {
	switch {
	case strings.HasPrefix(proto, "/meshsub/"), strings.HasPrefix(proto, "/floodsub/"):
		return classPresence
	case proto == "/serendip/claim/1":
		return classClaim
	case proto == node.SignalProtocol:
		return classSignal
	case strings.HasPrefix(proto, "/ipfs/kad/"):
		return classDHT
	}
	return classOther
}

var (
	// errTimeout: a member did not answer within callTimeout.
	errTimeout = errors.New("no answer")
	// errNoChat: the node offers no way to send chat.
	errNoChat = errors.New("node cannot send chat")
)

// callTimeout bounds one question to a node.
const callTimeout = 5 * time.Second

// within runs f with a deadline, giving up on it (not killing it) when the
// deadline passes first, so that one wedged node cannot hang the harness.
func within[T any](ctx context.Context, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	t := time.NewTimer(callTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-t.C:
		var zero T
		return zero, errTimeout
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
