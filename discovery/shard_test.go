package discovery

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func testShardConfig() ShardConfig {
	return DefaultShardConfig(LocalConfig()) // AnnounceInterval 1s, Window 4s
}

func newSharder(t *testing.T, level int) *Sharder {
	t.Helper()
	return newSharderWith(t, testShardConfig(), level)
}

// quiet: a window so long that silence never moves the level.
func quiet() ShardConfig {
	c := testShardConfig()
	c.Window = 1000 * time.Hour
	return c
}

func newSharderWith(t *testing.T, cfg ShardConfig, level int) *Sharder {
	t.Helper()
	s, err := NewSharder(me, cfg, level, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestShardTopic(t *testing.T) {
	if got := ShardTopic("main", Shard{}); got != PresenceTopic("main") {
		t.Errorf("root: %q", got)
	}
	if got := ShardTopic("main", Shard{Level: 7, Index: 85}); got != "serendip/main/presence/1/7.85" {
		t.Errorf("got %q", got)
	}
	s := Shard{Level: 5, Index: 0b10110}
	if a := s.Ancestor(2); a != (Shard{Level: 2, Index: 0b10}) {
		t.Errorf("ancestor %v", a)
	}
	if a := s.Ancestor(9); a != s {
		t.Errorf("ancestor below: %v", a)
	}
}

func TestShardConfigValidate(t *testing.T) {
	if err := testShardConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := testShardConfig()
	c.Target, c.MaxLevel, c.Epoch = 1, MaxShardLevel+1, 0
	if err := c.Validate(); !errors.Is(err, ErrConfig) {
		t.Fatalf("%v", err)
	}
	if _, err := NewSharder("", testShardConfig(), 0, rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Error("empty self")
	}
}

// TestShardEpochs: a node's home changes at its own epoch boundary (offset
// by a phase from its id), to a fresh uniform position.
func TestShardEpochs(t *testing.T) {
	s := newSharderWith(t, quiet(), 8)
	now := t0
	s.Update(now, false, false)
	home, wake := s.Home(), s.NextWake()
	if home.Level != 8 || !wake.After(now) || wake.After(now.Add(quiet().Epoch)) {
		t.Fatalf("home %v, wake %v", home, wake.Sub(now))
	}
	epochs := 0
	for i := 0; i < 20; i++ {
		next := time.Unix(0, (s.epoch+1)*int64(s.cfg.Epoch)-s.phase)
		if changed := s.Update(next, false, false); s.Home() != home && !changed {
			t.Fatalf("epoch boundary %d: a new home, not reported", i)
		}
		if s.Home() != home {
			epochs++
		}
		home = s.Home()
	}
	if epochs < 18 { // 1 in 256 to land on the same shard
		t.Errorf("the home changed only %d times in 20 epochs", epochs)
	}
	// The old home lingers, and announcements reach it too.
	if subs := s.Subscriptions(nil); len(subs) < 2 {
		t.Errorf("no lingering shard: %v", subs)
	}
}

// TestShardPublish: announcements go home, and to each ancestor k levels up
// with probability 2^-k; a withdraw goes wherever the search announced.
func TestShardPublish(t *testing.T) {
	s := newSharder(t, 6)
	s.Update(t0, true, false)
	counts := map[uint8]int{}
	const n = 20000
	for i := 0; i < n; i++ {
		for _, sh := range s.Publish(true, nil) {
			counts[sh.Level]++
		}
	}
	if counts[6] != n {
		t.Fatalf("home got %d of %d", counts[6], n)
	}
	for k := 1; k <= 4; k++ {
		want := float64(n) / float64(int(1)<<k)
		if got := float64(counts[uint8(6-k)]); got < 0.85*want || got > 1.15*want {
			t.Errorf("ancestor %d levels up got %v, want about %v", k, got, want)
		}
	}
	w := s.Publish(false, nil)
	if len(w) != len(counts) {
		t.Errorf("withdraw to %v, announced to %v", w, counts)
	}
	if w := s.Publish(false, nil); len(w) != 0 {
		t.Errorf("second withdraw to %v", w)
	}
}

// TestShardLonely: a lonely search joins 1, then 2, 4, ... more ancestors,
// each LonelyWait, down to the root; the search ending drops them.
func TestShardLonely(t *testing.T) {
	s := newSharderWith(t, quiet(), 6)
	now := t0
	s.Update(now, true, true)
	cfg := testShardConfig()
	var ups []int
	for i := 0; i < 5; i++ {
		now = now.Add(cfg.LonelyWait)
		s.Update(now, true, true)
		ups = append(ups, len(s.Subscriptions(nil))-1)
	}
	if want := []int{1, 2, 4, 6, 6}; !slices.Equal(ups, want) {
		t.Errorf("ancestors joined %v, want %v", ups, want)
	}
	if !s.Update(now, false, false) || len(s.Subscriptions(nil)) != 1 {
		t.Errorf("still joined: %v", s.Subscriptions(nil))
	}
}

// TestShardLonelySibling: from its first climb a lonely search also
// announces on the sibling of its home, which it does not join; its
// withdraw goes there too; a search that is not lonely does not.
func TestShardLonelySibling(t *testing.T) {
	s := newSharderWith(t, quiet(), 6)
	now := t0
	s.Update(now, true, true)
	home := s.Home()
	sibling := Shard{Level: 6, Index: home.Index ^ 1}
	if slices.Contains(s.Publish(true, nil), sibling) || s.Climbed() {
		t.Fatal("announced on the sibling before climbing")
	}
	s.Publish(false, nil)
	now = now.Add(testShardConfig().LonelyWait)
	s.Update(now, true, true)
	if !s.Climbed() {
		t.Error("Climbed false after the climb")
	}
	if slices.Contains(s.Subscriptions(nil), sibling) {
		t.Error("joined the sibling")
	}
	if !slices.Contains(s.Publish(true, nil), sibling) {
		t.Fatalf("lonely search did not announce on the sibling %v: %v", sibling, s.Publish(true, nil))
	}
	if !slices.Contains(s.Publish(false, nil), sibling) {
		t.Error("withdraw did not go to the sibling")
	}
	s.Update(now, false, false)
	if slices.Contains(s.Publish(true, nil), sibling) || s.Climbed() {
		t.Error("announced on the sibling after the search stopped being lonely")
	}
	root := newSharderWith(t, quiet(), 0)
	root.Update(now, true, true)
	root.Update(now.Add(time.Hour), true, true)
	if p := root.Publish(true, nil); len(p) != 1 {
		t.Errorf("a lonely node on the root announced on %v", p)
	}
}

// TestShardLevel: the estimate moves the level: a busy shard splits, a
// quiet one merges, a shard within [Target/2, 2·Target] stays.
func TestShardLevel(t *testing.T) {
	cfg := testShardConfig()
	for _, tt := range []struct {
		name     string
		perAI    int
		from, to uint8
	}{
		{"in band", cfg.Target, 5, 5},
		{"four times busy", 4 * cfg.Target, 5, 7},
		{"a quarter", cfg.Target / 4, 5, 3},
		{"silent", 0, 5, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSharder(t, int(tt.from))
			now := t0
			s.Update(now, false, false)
			home := s.Home()
			for i := 0; i < 6*tt.perAI && s.Level() == tt.from; i++ { // 6 announce intervals
				now = t0.Add(time.Duration(i) * cfg.AnnounceInterval / time.Duration(tt.perAI))
				s.Heard(now, home, tt.from)
				s.Update(now, false, false)
			}
			for end := t0.Add(6 * cfg.AnnounceInterval); now.Before(end) && s.Level() == tt.from; {
				now = now.Add(100 * time.Millisecond)
				s.Update(now, false, false)
			}
			if s.Level() != tt.to {
				t.Errorf("level %d, want %d (estimate %.1f)", s.Level(), tt.to, s.Estimate(now))
			}
		})
	}
}

// TestShardProbe: a node that does not know its level starts at the root
// and publishes nothing until it has listened; samples from deeper shards
// move it at once; silence leaves it at the root after probeTime.
func TestShardProbe(t *testing.T) {
	s := newSharder(t, -1)
	s.Update(t0, true, false)
	if !s.Probing() || len(s.Publish(true, nil)) != 0 || s.Level() != 0 {
		t.Fatalf("probing %v, level %d", s.Probing(), s.Level())
	}
	for i := 0; i < probeMessages; i++ {
		s.Heard(t0.Add(time.Duration(i)*100*time.Millisecond), Shard{}, 9)
	}
	if !s.Update(t0.Add(500*time.Millisecond), true, false) || s.Probing() || s.Level() != 9 {
		t.Fatalf("after samples from level 9: probing %v, level %d", s.Probing(), s.Level())
	}
	if p := s.Publish(true, nil); len(p) == 0 || p[0].Level != 9 {
		t.Fatalf("publishes to %v", p)
	}
	q := newSharder(t, -1)
	q.Update(t0, true, false)
	if !q.Update(t0.Add(probeTime), true, false) || q.Probing() || q.Level() != 0 || len(q.Publish(true, nil)) != 1 {
		t.Fatalf("after silence: probing %v, level %d", q.Probing(), q.Level())
	}
	// Enough messages from our own level end the probe in Heard; the next
	// Update reports it, so that a held announcement goes out then.
	h := newSharder(t, -1)
	h.Update(t0, true, false)
	for i := 0; i < probeMessages; i++ {
		h.Heard(t0.Add(time.Duration(i)*10*time.Millisecond), Shard{}, 0)
	}
	if !h.Update(t0.Add(50*time.Millisecond), true, false) || h.Probing() || len(h.Publish(true, nil)) != 1 {
		t.Errorf("probe ended in Heard: Update reported no change, or probing %v", h.Probing())
	}
	// Four messages split between two levels do not end it: it listens
	// on, and with no level most came from, the guess stands.
	m := newSharder(t, -1)
	m.Update(t0, true, false)
	for i := 0; i < probeMessages; i++ {
		m.Heard(t0.Add(time.Duration(i)*10*time.Millisecond), Shard{}, uint8(9*(i%2)))
	}
	if m.Update(t0.Add(50*time.Millisecond), true, false); !m.Probing() {
		t.Error("four messages from two levels ended the probe")
	}
	if m.Update(t0.Add(3*probeTime), true, false); m.Probing() || m.Level() != 0 {
		t.Errorf("split probe at 3·probeTime: probing %v, level %d", m.Probing(), m.Level())
	}
	// A few messages: from our own level they confirm the guess at
	// probeTime; from another, we listen on, up to 3·probeTime, and
	// go there (the level checks meanwhile do not forget them).
	for _, tt := range []struct {
		level uint8
		until time.Duration
	}{{0, probeTime}, {9, 3 * probeTime}} {
		r := newSharder(t, -1)
		r.Update(t0, true, false)
		for i := 0; i < probeMessages-1; i++ {
			r.Heard(t0.Add(time.Duration(i)*100*time.Millisecond), Shard{}, tt.level)
		}
		r.Update(t0.Add(probeTime), true, false)
		if r.Probing() != (tt.until > probeTime) {
			t.Errorf("%d messages from level %d: probing %v at probeTime", probeMessages-1, tt.level, r.Probing())
		}
		if !r.Update(t0.Add(tt.until), true, false) && tt.until > probeTime || r.Probing() || r.Level() != tt.level {
			t.Errorf("%d messages from level %d: probing %v, level %d at %v", probeMessages-1, tt.level, r.Probing(), r.Level(), tt.until)
		}
	}
}

// TestShardDeaf: a node that cannot reach its shard (no peer on its topic)
// does not take the silence for a quiet shard; once it can hear, a full
// window of silence merges as before.
func TestShardDeaf(t *testing.T) {
	cfg := testShardConfig()
	s := newSharder(t, 5)
	now := t0
	s.Update(now, false, false)
	for end := t0.Add(3 * cfg.Window); now.Before(end); now = now.Add(100 * time.Millisecond) {
		s.Deaf(now)
		s.Update(now, false, false)
	}
	if s.Level() != 5 {
		t.Fatalf("merged while deaf: level %d", s.Level())
	}
	for end := now.Add(2 * cfg.Window); now.Before(end) && s.Level() == 5; now = now.Add(100 * time.Millisecond) {
		s.Update(now, false, false)
	}
	if s.Level() != 3 {
		t.Fatalf("silent once it could hear: level %d, want 3", s.Level())
	}
}
