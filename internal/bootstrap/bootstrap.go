// Package bootstrap connects a host to its bootstrap peers.
package bootstrap

import (
	"context"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// dialTimeout bounds one connection attempt.
const dialTimeout = 10 * time.Second

// Connect dials every peer until each has answered once, retrying the ones
// that fail with a backoff from one second up to a minute. It returns when all
// have answered or ctx ends; connected is closed after the first success (or
// at once when peers is empty), so callers can wait for the network.
func Connect(ctx context.Context, h host.Host, peers []peer.AddrInfo, log *slog.Logger, connected chan<- struct{}) {
	signalled := false
	signal := func() {
		if !signalled && connected != nil {
			close(connected)
		}
		signalled = true
	}
	if len(peers) == 0 {
		signal()
	}
	pending := append([]peer.AddrInfo(nil), peers...)
	for delay := time.Second; len(pending) > 0; delay = min(2*delay, time.Minute) {
		var left []peer.AddrInfo
		for _, ai := range pending {
			if ai.ID == h.ID() {
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			err := h.Connect(dctx, ai)
			cancel()
			if err != nil {
				log.Debug("bootstrap peer unreachable", "peer", ai.ID, "err", err)
				left = append(left, ai)
				continue
			}
			log.Debug("connected to bootstrap peer", "peer", ai.ID)
			signal()
		}
		pending = left
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}
