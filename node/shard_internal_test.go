package node

import (
	"testing"
	"time"
)

// TestSiblingPace: a sibling lookup whose new connections do not turn out
// to be on the sibling's topic is not repeated at once but after an
// interval that doubles up to maxSiblingBackoff; nodes that do join reset
// it.
func TestSiblingPace(t *testing.T) {
	const iv = 5 * time.Second
	p := siblingPace{interval: iv, backoff: 1}
	check := func(step string, need int, wantLook bool, wantDelay time.Duration) {
		t.Helper()
		d, look := p.next(need)
		if look != wantLook || !look && d != wantDelay {
			t.Fatalf("%s: next(%d) = %v, %v; want %v, %v", step, need, d, look, wantDelay, wantLook)
		}
	}
	check("first look", 2, true, 0)
	if d := p.looked(2); d != meetSettle {
		t.Fatalf("after connecting to 2: wait %v; want meetSettle", d)
	}
	// Those two never join the sibling's topic (nodes since moved on).
	for _, want := range []time.Duration{2 * iv, 0, 4 * iv, 0, 8 * iv, 0, 8 * iv} {
		if want == 0 {
			check("look again after the back-off", 2, true, 0)
			if d := p.looked(2); d != meetSettle {
				t.Fatalf("after connecting again: wait %v; want meetSettle", d)
			}
			continue
		}
		check("they did not join", 2, false, want)
	}
	// This time they join.
	check("look", 2, true, 0)
	p.looked(2)
	check("both joined", 0, false, iv)
	check("one left", 1, true, 0)
	if d := p.looked(0); d != iv {
		t.Fatalf("a lookup that connected to nobody: wait %v; want %v (back-off reset)", d, iv)
	}
}
