package discovery

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestSeqTracker(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := NewSeqTracker(3, 10*time.Second)
	steps := []struct {
		peer PeerID
		seq  uint64
		dt   time.Duration
		want bool
	}{
		{"a", 5, 0, true},
		{"a", 5, 0, false}, // replay
		{"a", 4, 0, false}, // older
		{"a", 6, 0, true},
		{"b", 1, 0, true},
		{"c", 1, 0, true},
		{"d", 1, 0, true},                // full: forgets a, the least recent
		{"a", 2, 0, true},                // so a's old seq passes (documented); forgets b
		{"c", 1, 0, false},               // c is still known
		{"b", 1, 0, true},                // b was forgotten; forgets d
		{"a", 3, 11 * time.Second, true}, // everything stale now
		{"a", 3, 0, false},
	}
	for i, s := range steps {
		now = now.Add(s.dt)
		if got := tr.Accept(s.peer, s.seq, now); got != s.want {
			t.Fatalf("step %d (%s, %d): got %v, want %v", i, s.peer, s.seq, got, s.want)
		}
		if tr.Len() > 3 {
			t.Fatalf("step %d: %d entries", i, tr.Len())
		}
	}
	if tr.Len() != 1 {
		t.Fatalf("stale entries kept: %d", tr.Len())
	}
}

func TestSeqTrackerConcurrent(t *testing.T) {
	tr := NewSeqTracker(0, time.Minute)
	now := time.Unix(1000, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				if tr.Accept(PeerID(fmt.Sprint(i%10)), uint64(i), now) {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if accepted < 1000 || accepted > 8000 {
		t.Fatalf("accepted %d", accepted)
	}
}
