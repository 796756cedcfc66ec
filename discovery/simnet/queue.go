package simnet

import "slices"

// The event queue: a calendar queue. Events fall into buckets of about a
// millisecond on a ring that spans a minute; a bucket is sorted by (at, seq)
// when its turn comes, and events beyond the ring wait in a 4-ary heap.
// Pushes are appends, so the hot path (a presence delivery a latency ahead)
// costs no heap walk. Items are values: the hottest events (a presence
// delivery, a timer) carry their data in the item and allocate nothing.

type kind uint8

const (
	kindFunc     kind = iota // run fn
	kindPresence             // deliver msg to node to
	kindWake                 // Tick node to, if its pending wake is still at
)

type item struct {
	at   int64  // nanoseconds since the start of the run
	seq  uint64 // insertion order, the tie-break that makes runs replay
	fn   func()
	msg  *presenceMsg
	to   int32
	kind kind
}

func (a *item) less(b *item) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func cmpItems(a, b item) int {
	switch {
	case a.less(&b):
		return -1
	case b.less(&a):
		return 1
	}
	return 0
}

const (
	bucketShift = 20      // 2^20 ns ≈ 1 ms per bucket
	ringSize    = 1 << 16 // ≈ 69 s of buckets
	ringMask    = ringSize - 1
)

type queue struct {
	ring    [][]item
	inRing  int   // items in ring buckets other than the current one
	cur     int64 // the bucket number being served
	now     []item
	pos     int // next item of now
	far     heap4
	started bool
}

func (q *queue) len() int { return len(q.now) - q.pos + q.inRing + len(q.far) }

func (q *queue) push(it item) {
	if q.ring == nil {
		q.ring = make([][]item, ringSize)
	}
	b := it.at >> bucketShift
	switch {
	case q.started && b <= q.cur:
		// Into the bucket being served, in order (rare: a timer less than a
		// bucket ahead).
		rest := q.now[q.pos:]
		k, _ := slices.BinarySearchFunc(rest, it, cmpItems)
		q.now = slices.Insert(q.now, q.pos+k, it)
	case b-q.cur < ringSize:
		q.ring[b&ringMask] = append(q.ring[b&ringMask], it)
		q.inRing++
	default:
		q.far.push(it)
	}
}

// peek returns the next item, or nil if the queue is empty.
func (q *queue) peek() *item {
	for q.pos >= len(q.now) {
		if !q.advance() {
			return nil
		}
	}
	return &q.now[q.pos]
}

func (q *queue) pop() item {
	q.peek()
	it := q.now[q.pos]
	q.now[q.pos] = item{}
	q.pos++
	return it
}

// advance moves to the next bucket that holds items; false if none is left.
func (q *queue) advance() bool {
	if q.inRing == 0 && len(q.far) == 0 {
		return false
	}
	q.now, q.pos = nil, 0
	for {
		if !q.started {
			q.started = true
		} else {
			q.cur++
		}
		if q.inRing == 0 && len(q.far) > 0 {
			if b := q.far[0].at >> bucketShift; b > q.cur {
				q.cur = b // nothing in the ring: jump
			}
		}
		for len(q.far) > 0 && q.far[0].at>>bucketShift <= q.cur {
			it := q.far.pop()
			q.ring[q.cur&ringMask] = append(q.ring[q.cur&ringMask], it)
			q.inRing++
		}
		if bk := q.ring[q.cur&ringMask]; len(bk) > 0 {
			q.inRing -= len(bk)
			q.now = bk
			q.ring[q.cur&ringMask] = nil
			slices.SortFunc(q.now, cmpItems)
			return true
		}
	}
}

// heap4 is a 4-ary min-heap of items, for events beyond the ring.
type heap4 []item

func (h *heap4) push(it item) {
	*h = append(*h, it)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !s[i].less(&s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *heap4) pop() item {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = item{}
	s = s[:last]
	*h = s
	n, i := last, 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < n; k++ {
			if s[k].less(&s[m]) {
				m = k
			}
		}
		if !s[m].less(&s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	return top
}
