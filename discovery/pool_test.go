package discovery

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestPoolAgainstMap drives the pool (scan below smallPool entries, index
// above) with random operations and checks it against a plain map.
func TestPoolAgainstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	p := newPool(40)
	ref := map[PeerID]time.Time{}
	recent := map[PeerID]bool{}
	now := t0
	for step := 0; step < 20000; step++ {
		peer := PeerID(fmt.Sprint("p", r.IntN(60)))
		switch op := r.IntN(10); {
		case op < 5:
			exp := now.Add(time.Duration(1+r.IntN(5000)) * time.Millisecond)
			added := p.upsert(poolEntry{peer: peer, expires: exp}, func(q PeerID) bool { return recent[q] })
			_, had := ref[peer]
			want := !had
			if !had && len(ref) >= p.max {
				// full: replaced the earliest expiry if exp outlives it
				var oldest PeerID
				for q, e := range ref {
					if oldest == "" || e.Before(ref[oldest]) {
						oldest = q
					}
				}
				if exp.After(ref[oldest]) {
					delete(ref, oldest)
					ref[peer] = exp
				} else {
					want = false
				}
			} else {
				ref[peer] = exp
			}
			if added != want {
				t.Fatalf("step %d: upsert %s added=%v, want %v", step, peer, added, want)
			}
		case op < 7:
			_, had := ref[peer]
			if p.remove(peer) != had {
				t.Fatalf("step %d: remove %s", step, peer)
			}
			delete(ref, peer)
		case op < 8:
			recent[peer] = !recent[peer]
			p.setRecent(peer, recent[peer])
		default:
			now = now.Add(time.Duration(r.IntN(200)) * time.Millisecond)
			p.prune(now)
			for q, e := range ref {
				if !e.After(now) {
					delete(ref, q)
				}
			}
		}
		if p.len() != len(ref) {
			t.Fatalf("step %d: pool has %d, want %d", step, p.len(), len(ref))
		}
		nRecent := 0
		for q, e := range ref {
			got := p.get(q)
			if got == nil || !got.expires.Equal(e) {
				t.Fatalf("step %d: %s: %+v, want expiry %v", step, q, got, e)
			}
			if got.recent {
				nRecent++
			}
		}
		if p.eligible() != len(ref)-nRecent || p.nRecent != nRecent {
			t.Fatalf("step %d: eligible %d, recent %d/%d", step, p.eligible(), p.nRecent, nRecent)
		}
		if p.len() > smallPool && p.index == nil || p.len() <= smallPool/2 && p.index != nil {
			t.Fatalf("step %d: index %v at %d entries", step, p.index != nil, p.len())
		}
	}
}
