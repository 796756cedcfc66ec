// Package bootstrap keeps a host connected to its bootstrap peers.
package bootstrap

import (
	"context"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// dialTimeout bounds one connection attempt.
const dialTimeout = 10 * time.Second

// protectTag marks the bootstrap peers in the connection manager.
const protectTag = "serendip-bootstrap"

// checkEvery is how often connected peers are checked once all answered
// (a variable so tests can shorten it).
var checkEvery = 30 * time.Second

// Connect dials every bootstrap peer and keeps doing so for those that are
// not connected: failures are retried with a backoff from one second up to a
// minute, and a peer that drops the connection later (a relay trimming its
// connections, a restart) is dialled again within checkEvery. It returns when
// ctx ends. The bootstrap peers are protected from the host's connection
// manager: a node that trims its connections keeps its relays (its DHT
// servers). connected is closed after the first success (or at once when
// peers is empty), so callers can wait for the network.
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
		return
	}
	for _, ai := range peers {
		h.ConnManager().Protect(ai.ID, protectTag)
	}
	backoff := time.Second
	for {
		failed := false
		for _, ai := range peers {
			if ai.ID == h.ID() {
				continue
			}
			if h.Network().Connectedness(ai.ID) == network.Connected {
				signal()
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			err := h.Connect(dctx, ai)
			cancel()
			if err != nil {
				log.Debug("bootstrap peer unreachable", "peer", ai.ID, "err", err)
				failed = true
				continue
			}
			log.Debug("connected to bootstrap peer", "peer", ai.ID)
			signal()
		}
		wait := checkEvery
		if failed {
			wait = min(backoff, checkEvery)
			backoff = min(2*backoff, time.Minute)
		} else {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
