package discovery

import (
	"container/list"
	"sync"
	"time"
)

// DefaultSeqTrackerSize is the number of peers a SeqTracker made with size 0
// remembers.
const DefaultSeqTrackerSize = 10000

// SeqTracker remembers the last presence Seq accepted from each peer and
// refuses replays and older messages. It is bounded: it keeps at most size
// peers, forgets a peer ttl after its last accepted message, and when full
// forgets the peer heard from least recently.
//
// Forgetting is safe only for messages that Presence.Check already refuses:
// pass a ttl at least as long as the maxTTL given to Check, and check expiry
// before Accept. A peer forgotten early because the tracker was full may have
// an unexpired message replayed once; that costs a stale pool entry, not
// safety.
//
// A SeqTracker is safe for concurrent use (pubsub validators run in parallel).
type SeqTracker struct {
	mu    sync.Mutex
	size  int
	ttl   time.Duration
	order *list.List // of *seqEntry, most recently accepted first
	peers map[PeerID]*list.Element
}

type seqEntry struct {
	peer PeerID
	seq  uint64
	at   time.Time
}

// NewSeqTracker returns a tracker for at most size peers (DefaultSeqTrackerSize
// if size <= 0) that forgets a peer ttl after its last accepted message.
func NewSeqTracker(size int, ttl time.Duration) *SeqTracker {
	if size <= 0 {
		size = DefaultSeqTrackerSize
	}
	return &SeqTracker{size: size, ttl: ttl, order: list.New(), peers: make(map[PeerID]*list.Element)}
}

// Accept reports whether seq is newer than anything accepted from peer, and if
// so records it. now should come from a monotonic clock.
func (t *SeqTracker) Accept(peer PeerID, seq uint64, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.prune(now)
	if el, ok := t.peers[peer]; ok {
		e := el.Value.(*seqEntry)
		if seq <= e.seq {
			return false
		}
		e.seq, e.at = seq, now
		t.order.MoveToFront(el)
		return true
	}
	for t.order.Len() >= t.size {
		t.remove(t.order.Back())
	}
	t.peers[peer] = t.order.PushFront(&seqEntry{peer: peer, seq: seq, at: now})
	return true
}

// Len returns the number of peers remembered.
func (t *SeqTracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.order.Len()
}

func (t *SeqTracker) prune(now time.Time) {
	for el := t.order.Back(); el != nil; el = t.order.Back() {
		if now.Sub(el.Value.(*seqEntry).at) < t.ttl {
			return
		}
		t.remove(el)
	}
}

func (t *SeqTracker) remove(el *list.Element) {
	delete(t.peers, el.Value.(*seqEntry).peer)
	t.order.Remove(el)
}
