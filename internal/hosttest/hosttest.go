// Package hosttest gives tests a real libp2p host on loopback.
package hosttest

import (
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
)

// Loopback returns a libp2p host (libp2p's defaults and opts) listening on
// a random TCP port of 127.0.0.1, closed when the test ends.
func Loopback(t testing.TB, opts ...libp2p.Option) host.Host {
	t.Helper()
	h, err := libp2p.New(append([]libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}
