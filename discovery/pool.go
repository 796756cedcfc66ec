package discovery

import "time"

// pool holds the peers announced as available, in a deterministic order (a
// slice, never map iteration) so that a seeded matcher replays exactly.
type pool struct {
	entries []poolEntry
	index   map[PeerID]int
	max     int
}

type poolEntry struct {
	peer      PeerID
	expires   time.Time
	interests []string
}

func newPool(max int) pool { return pool{index: make(map[PeerID]int), max: max} }

func (p *pool) len() int { return len(p.entries) }

func (p *pool) has(peer PeerID) bool { _, ok := p.index[peer]; return ok }

// upsert adds or refreshes e. When full it replaces the entry that expires
// first, if e outlives it; otherwise e is dropped.
func (p *pool) upsert(e poolEntry) {
	if i, ok := p.index[e.peer]; ok {
		p.entries[i] = e
		return
	}
	if len(p.entries) >= p.max {
		oldest := 0
		for i := range p.entries {
			if p.entries[i].expires.Before(p.entries[oldest].expires) {
				oldest = i
			}
		}
		if !e.expires.After(p.entries[oldest].expires) {
			return
		}
		p.removeAt(oldest)
	}
	p.index[e.peer] = len(p.entries)
	p.entries = append(p.entries, e)
}

func (p *pool) remove(peer PeerID) {
	if i, ok := p.index[peer]; ok {
		p.removeAt(i)
	}
}

func (p *pool) removeAt(i int) {
	delete(p.index, p.entries[i].peer)
	last := len(p.entries) - 1
	if i != last {
		p.entries[i] = p.entries[last]
		p.index[p.entries[i].peer] = i
	}
	p.entries[last] = poolEntry{}
	p.entries = p.entries[:last]
}

// prune drops entries that expired at or before now.
func (p *pool) prune(now time.Time) {
	for i := len(p.entries) - 1; i >= 0; i-- {
		if !p.entries[i].expires.After(now) {
			p.removeAt(i)
		}
	}
}
