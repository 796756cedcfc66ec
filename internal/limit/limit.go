// Package limit holds a per-peer token bucket used by the stream protocols.
package limit

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// maxPeers bounds the memory of a PerPeer: past it the table is forgotten
// wholesale (a flood of fresh peer ids only resets the buckets).
const maxPeers = 4096

// PerPeer is a token bucket per peer. Safe for concurrent use.
type PerPeer struct {
	mu    sync.Mutex
	r     rate.Limit
	burst int
	m     map[peer.ID]*rate.Limiter
}

// NewPerPeer allows each peer perSecond events a second, with bursts of burst.
func NewPerPeer(perSecond float64, burst int) *PerPeer {
	return &PerPeer{r: rate.Limit(perSecond), burst: burst, m: make(map[peer.ID]*rate.Limiter)}
}

// Allow reports whether p may have one more event now.
func (l *PerPeer) Allow(p peer.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[p]
	if !ok {
		if len(l.m) >= maxPeers {
			clear(l.m)
		}
		lim = rate.NewLimiter(l.r, l.burst)
		l.m[p] = lim
	}
	return lim.Allow()
}
