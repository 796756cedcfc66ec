package discovery

import (
	"hash/maphash"
	"time"
)

// pool holds the peers announced as available, in a deterministic order (a
// slice, never map iteration) so that a seeded matcher replays exactly. A
// small pool is searched by a scan; an index map exists only above
// smallPool entries.
// Pruning is lazy: minExp is never after the earliest expiry, and prune scans
// only once now reaches it, so a Step costs no pass over the pool.
type pool struct {
	entries []poolEntry
	index   map[PeerID]int
	max     int
	minExp  time.Time // no entry expires before this; zero when empty
	gen     uint64    // counts changes of membership
	nRecent int       // entries marked recent
}

type poolEntry struct {
	h         uint64 // peerHash(peer): scans compare it before the string
	peer      PeerID
	expires   time.Time
	key       uint64 // the peer's pairing key for its current search
	recent    bool   // a recent partner: in the pairing order, never claimed
	connected bool   // PresenceSeen.Connected, as of its latest presence
	interests []string
}

// smallPool: up to this many entries, no index map.
const smallPool = 16

func newPool(max int) pool { return pool{max: max} }

func (p *pool) len() int { return len(p.entries) }

// hashSeed keys peerHash; it only speeds up equality tests, so a random
// seed changes no behaviour.
var hashSeed = maphash.MakeSeed()

func peerHash(p PeerID) uint64 { return maphash.String(hashSeed, string(p)) | 1 }

func (p *pool) find(peer PeerID) (int, bool) { return p.findH(peer, 0) }

// findH is find with peerHash(peer) already known (0: not known).
func (p *pool) findH(peer PeerID, h uint64) (int, bool) {
	if p.index != nil {
		i, ok := p.index[peer]
		return i, ok
	}
	if h == 0 {
		h = peerHash(peer)
	}
	for i := range p.entries {
		if e := &p.entries[i]; e.h == h && e.peer == peer {
			return i, true
		}
	}
	return 0, false
}

func (p *pool) has(peer PeerID) bool { _, ok := p.find(peer); return ok }

func (p *pool) get(peer PeerID) *poolEntry {
	if i, ok := p.find(peer); ok {
		return &p.entries[i]
	}
	return nil
}

// upsert adds or refreshes e (its h is filled in if zero) and reports
// whether e's peer is new; a new entry is marked recent if isRecent says so. When full it
// replaces the entry that expires first, if e outlives it; otherwise e is
// dropped.
func (p *pool) upsert(e poolEntry, isRecent func(PeerID) bool) (added bool) {
	if e.h == 0 {
		e.h = peerHash(e.peer)
	}
	if i, ok := p.findH(e.peer, e.h); ok {
		e.recent = p.entries[i].recent
		p.entries[i] = e
		p.lower(e.expires)
		return false
	}
	e.recent = isRecent(e.peer)
	if len(p.entries) >= p.max {
		oldest := 0
		for i := range p.entries {
			if p.entries[i].expires.Before(p.entries[oldest].expires) {
				oldest = i
			}
		}
		if !e.expires.After(p.entries[oldest].expires) {
			return false
		}
		p.removeAt(oldest)
	}
	if p.index != nil {
		p.index[e.peer] = len(p.entries)
	} else if len(p.entries) == smallPool {
		p.index = make(map[PeerID]int, 2*smallPool)
		for i := range p.entries {
			p.index[p.entries[i].peer] = i
		}
		p.index[e.peer] = len(p.entries)
	}
	p.entries = append(p.entries, e)
	p.lower(e.expires)
	p.gen++
	if e.recent {
		p.nRecent++
	}
	return true
}

func (p *pool) lower(t time.Time) {
	if p.minExp.IsZero() || t.Before(p.minExp) {
		p.minExp = t
	}
}

func (p *pool) remove(peer PeerID) bool {
	if i, ok := p.find(peer); ok {
		p.removeAt(i)
		return true
	}
	return false
}

// setRecent marks peer's entry, if any, as a recent partner or not.
func (p *pool) setRecent(peer PeerID, recent bool) {
	if e := p.get(peer); e != nil && e.recent != recent {
		e.recent = recent
		if recent {
			p.nRecent++
		} else {
			p.nRecent--
		}
	}
}

// eligible counts the entries that are not recent partners.
func (p *pool) eligible() int { return len(p.entries) - p.nRecent }

func (p *pool) removeAt(i int) {
	p.gen++
	if p.entries[i].recent {
		p.nRecent--
	}
	last := len(p.entries) - 1
	if p.index != nil {
		delete(p.index, p.entries[i].peer)
		if i != last {
			p.index[p.entries[last].peer] = i
		}
	}
	if i != last {
		p.entries[i] = p.entries[last]
	}
	p.entries[last] = poolEntry{}
	p.entries = p.entries[:last]
	if c := cap(p.entries); c > 2*smallPool && last < c/4 {
		p.entries = append(make([]poolEntry, 0, 2*last), p.entries...) // a burst is over: shrink
	}
	if p.index != nil && last <= smallPool/2 {
		p.index = nil
	}
	if last == 0 {
		p.minExp = time.Time{}
	}
}

// prune drops entries that expired at or before now and reports whether it
// dropped any.
func (p *pool) prune(now time.Time) bool {
	if p.minExp.IsZero() || now.Before(p.minExp) {
		return false
	}
	dropped := false
	p.minExp = time.Time{}
	for i := len(p.entries) - 1; i >= 0; i-- {
		if !p.entries[i].expires.After(now) {
			p.removeAt(i)
			dropped = true
		}
	}
	for i := range p.entries {
		p.lower(p.entries[i].expires)
	}
	return dropped
}
