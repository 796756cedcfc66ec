package discovery

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// MaxShardLevel is the deepest shard level a presence may name: 2^30 shards.
const MaxShardLevel = 30

// Shard names one presence shard: the peers whose position in the current
// epoch starts with the Level bits of Index. Level 0 is the root, the whole
// network.
type Shard struct {
	Level uint8
	Index uint32 // < 1<<Level
}

// Ancestor returns the shard at level l (at most s.Level) that contains s.
func (s Shard) Ancestor(l uint8) Shard {
	if l >= s.Level {
		return s
	}
	return Shard{Level: l, Index: s.Index >> (s.Level - l)}
}

func (s Shard) String() string {
	return strconv.Itoa(int(s.Level)) + "." + strconv.FormatUint(uint64(s.Index), 10)
}

// ShardTopic returns the GossipSub topic of shard s on network: the root is
// PresenceTopic(network) itself, so that a network too small to shard uses
// one topic, the one relays already carry; a deeper shard appends
// "/<level>.<index>", for example "serendip/main/presence/1/7.85".
func ShardTopic(network string, s Shard) string {
	if s.Level == 0 {
		return PresenceTopic(network)
	}
	return PresenceTopic(network) + "/" + s.String()
}

// ShardConfig sizes and rotates the presence shards. See the package doc,
// Presence shards.
type ShardConfig struct {
	// Target is the number of presence messages a shard should carry per
	// AnnounceInterval. A node whose shard carries over 2*Target splits (goes
	// one level deeper), under Target/2 merges; both land near Target.
	Target int
	// MaxLevel bounds the level; zero keeps the whole network on the root.
	MaxLevel int
	// Epoch is how long a node keeps its position. Each node's epochs are
	// offset by a phase drawn from its id, so that the network rotates a
	// little at a time.
	Epoch time.Duration
	// Window is how long a node listens at a level before it may change
	// level, and the span of its estimate.
	Window time.Duration
	// LonelyWait is how long a searching node may have nobody to claim
	// before it also joins the parent of the shards it is in.
	LonelyWait time.Duration
	// Linger is how long a node stays joined to a shard it left (a new
	// epoch, a new level): long enough to hear the withdraws of the peers it
	// knew from there. The matcher's PresenceTTL.
	Linger time.Duration
	// AnnounceInterval is the matcher's (Config.AnnounceInterval).
	AnnounceInterval time.Duration
}

// DefaultShardConfig returns shard settings for matchers configured with m.
func DefaultShardConfig(m Config) ShardConfig {
	return ShardConfig{
		Target:           16,
		MaxLevel:         24,
		Epoch:            10 * time.Minute,
		Window:           4 * m.AnnounceInterval,
		LonelyWait:       time.Second,
		Linger:           m.PresenceTTL,
		AnnounceInterval: m.AnnounceInterval,
	}
}

// Validate reports every bad value, each error wrapping ErrConfig.
func (c ShardConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: shard: "+format, append([]any{ErrConfig}, args...)...))
	}
	if c.Target < 2 {
		bad("Target must be at least 2, got %d", c.Target)
	}
	if c.MaxLevel < 0 || c.MaxLevel > MaxShardLevel {
		bad("MaxLevel must be in [0, %d], got %d", MaxShardLevel, c.MaxLevel)
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"Epoch", c.Epoch}, {"Window", c.Window}, {"LonelyWait", c.LonelyWait}, {"AnnounceInterval", c.AnnounceInterval}} {
		if d.d <= 0 {
			bad("%s must be positive, got %v", d.name, d.d)
		}
	}
	if c.Linger < 0 {
		bad("Linger must not be negative, got %v", c.Linger)
	}
	return errors.Join(errs...)
}

// estimateBuckets is the resolution of a Sharder's estimate over its Window.
const estimateBuckets = 8

// Sharder places one node in the presence shards: which shard topics to
// join, where to publish each announcement, at what level. Like Matcher it
// is a pure state machine: no clock, no I/O, randomness only from the rng it
// is given. Time must be wall-clock time (epochs and level checks fall on
// the same instants across nodes); a node that feeds it time.Now() needs
// nothing else. Not safe for concurrent use.
//
// The node calls Update after matcher steps (with the matcher's searching
// and lonely state) and at NextWake; when it reports a change, the node
// joins Subscriptions and leaves the rest. It calls Heard for every presence
// that passed the validator, and Publish for every Announce of the matcher.
type Sharder struct {
	self  PeerID
	cfg   ShardConfig
	rng   *rand.Rand
	phase int64 // our epochs start phase nanoseconds before the multiples of Epoch

	started bool
	// probing: we did not know our level, start at the root and have not
	// yet published; see Publish.
	probing    bool
	probeUntil time.Time
	epoch      int64
	pos        uint64 // position in the current epoch
	level      uint8
	up         uint8 // lonely: also the ancestors level-up .. level-1
	linger     []lingering

	lonelySince time.Time // zero: not lonely

	since   time.Time // estimating at this level since
	check   time.Time // next look at the estimate
	buckets [estimateBuckets]float64
	newest  int64                     // bucket number of buckets[newest%estimateBuckets]
	levels  [MaxShardLevel + 1]uint16 // messages heard on home since the last check (or the probe's start), by sender level

	announce []Shard
	moved    bool // the level changed, or the probe ended, outside Update (Heard)
}

type lingering struct {
	sh    Shard
	until time.Time
}

// NewSharder returns a sharder for self starting at level, the level the
// node had when it last ran, clamped to cfg.MaxLevel. A node that does not
// know passes a negative level: it starts at the root and probes (see
// Publish).
func NewSharder(self PeerID, cfg ShardConfig, level int, rng *rand.Rand) (*Sharder, error) {
	if self == "" {
		return nil, fmt.Errorf("sharder: empty self: %w", ErrInvalidPeer)
	}
	if rng == nil {
		return nil, ErrNilRand
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := sha256.Sum256([]byte("serendip/phase\x00" + string(self)))
	return &Sharder{
		self:    self,
		cfg:     cfg,
		rng:     rng,
		phase:   int64(binary.BigEndian.Uint64(h[:8]) % uint64(cfg.Epoch)),
		level:   uint8(max(0, min(level, cfg.MaxLevel))),
		probing: level < 0,
	}, nil
}

// Level returns the current level.
func (s *Sharder) Level() uint8 { return s.level }

// Climbed reports whether a lonely search has joined ancestors of home
// (see Update): it announces on home's sibling too (see Publish).
func (s *Sharder) Climbed() bool { return s.up > 0 }

// Probing reports whether the sharder still probes its first level (see
// Publish): the node should Update it soon after each Heard.
func (s *Sharder) Probing() bool { return s.probing }

// Home returns the shard we are in: the Level-bit prefix of our position in
// the current epoch. Valid after the first Update.
func (s *Sharder) Home() Shard { return position(s.pos, s.level) }

func position(pos uint64, level uint8) Shard {
	if level == 0 {
		return Shard{}
	}
	return Shard{Level: level, Index: uint32(pos >> (64 - level))}
}

// Estimate returns the presence messages per AnnounceInterval our home shard
// carries, as heard over the window so far (deeper senders weighted up).
func (s *Sharder) Estimate(now time.Time) float64 {
	if !s.started {
		return 0
	}
	s.advance(now)
	span := now.Sub(s.since)
	if oldest := (s.newest - estimateBuckets + 1) * int64(s.bucketWidth()); oldest > 0 {
		span -= time.Duration(oldest)
	}
	if span <= 0 {
		return 0
	}
	sum := 0.0
	for _, b := range s.buckets {
		sum += b
	}
	return sum * float64(s.cfg.AnnounceInterval) / float64(span)
}

func (s *Sharder) bucketWidth() time.Duration {
	return max(1, s.cfg.Window/estimateBuckets)
}

// advance moves the estimate's ring of buckets to now.
func (s *Sharder) advance(now time.Time) {
	b := int64(now.Sub(s.since) / s.bucketWidth())
	if b <= s.newest {
		return
	}
	for i := s.newest + 1; i <= b && i <= s.newest+estimateBuckets; i++ {
		s.buckets[i%estimateBuckets] = 0
	}
	s.newest = b
}

// maxWeightLevels caps the weight of a message from a deeper sender at
// 2^maxWeightLevels: a rare sample from far deeper must not swing the
// estimate (the majority rule of wantLevel moves a node that is far off).
const maxWeightLevels = 3

// Heard counts a presence message received on shard on from a sender at
// senderLevel, for the estimate. Only our home shard counts; a message from
// a deeper sender stands for the 2^(its level - ours) that it was sampled
// from (see Publish), at most 2^maxWeightLevels.
func (s *Sharder) Heard(now time.Time, on Shard, senderLevel uint8) {
	if !s.started || on != s.Home() || senderLevel > MaxShardLevel {
		return
	}
	s.advance(now)
	d := min(int(senderLevel)-int(s.level), maxWeightLevels)
	s.buckets[s.newest%estimateBuckets] += math.Ldexp(1, d)
	if s.levels[senderLevel] < math.MaxUint16 {
		s.levels[senderLevel]++
	}
	if s.probing {
		s.probe()
	}
}

// probeTime and probeMessages bound the probe of a sharder made without a
// level: it publishes
// nothing until it has heard probeMessages on its home shard, or probeTime
// has passed in silence, or 3·probeTime in all. An ancestor carries samples
// of the shards below it, so a newcomer whose guess is too shallow (level 0
// in a big network) learns the network's level from the first messages and
// moves there before it adds to the ancestor's traffic; in a quiet network
// it hears nothing and publishes after probeTime.
const (
	probeTime     = time.Second
	probeMessages = 4
)

// probe ends the probe once probeMessages are heard, most of them from one
// level.
func (s *Sharder) probe() {
	if total, mode := s.heardLevels(); total >= probeMessages && 2*int(s.levels[mode]) > total {
		s.endProbe(s.since)
	}
}

// heardLevels counts the messages heard on home since the last check (or
// the probe's start) and names the level most came from.
func (s *Sharder) heardLevels() (total, mode int) {
	for l, n := range s.levels {
		total += int(n)
		if n > s.levels[mode] {
			mode = l
		}
	}
	return total, mode
}

// endProbe moves us to the level most of what we heard came from, if that
// is not ours. With nothing heard by probeTime, or only messages from our
// own level (a small network: everyone on the root), the guess stands;
// with a few from another level, or no level most came from, we listen up
// to 3·probeTime. (Eight nodes started together waited the 3 s when they
// heard the first few of their own: they publish nothing meanwhile, so
// nobody heard them.)
func (s *Sharder) endProbe(now time.Time) {
	total, mode := s.heardLevels()
	others := total - int(s.levels[s.level])
	majority := 2*int(s.levels[mode]) > total
	if others > 0 && (total < probeMessages || !majority) && now.Before(s.since.Add(3*probeTime)) {
		s.probeUntil = s.since.Add(3 * probeTime)
		return
	}
	// A probe that ends in Heard with all it heard from our own level (a
	// small network, everyone on the root) makes Update report the end, so
	// that the announcement held meanwhile goes out at once (Publish names
	// shards again). Held ones waited for the next announcement: eight
	// nodes started together, whose claims had all met the same first
	// few, waited 2 s for each other. Not when it heard other levels: in
	// 3,000 fresh nodes of the simulation that sent more to the root than
	// the probe saves (TestLevelsConverge).
	s.probing, s.probeUntil = false, time.Time{}
	s.moved = s.moved || others == 0
	if majority && mode != int(s.level) && mode <= s.cfg.MaxLevel {
		s.moveTo(uint8(mode), now) // Update reports the change
	}
}

// moveTo changes our level at now. Moving up (merging), the old home
// lingers; moving down (splitting) it does not: it is an ancestor of the new
// one, whose traffic we leave because there is too much of it.
func (s *Sharder) moveTo(l uint8, now time.Time) {
	old := s.Home()
	deeper := l > s.level
	s.level, s.up = l, 0
	s.resetEstimate(now)
	if !deeper {
		s.leave(old, now)
	}
	s.moved = true
}

// Deaf tells the sharder that at now the node cannot hear its home shard:
// it has no peer on the shard's topic yet (it is still finding them). The
// estimate starts again, so that a shard that is only out of reach is not
// taken for a quiet one and merged away: at a thousand nodes starting at
// once on one machine, nodes that could not yet reach their shards merged
// level after level up to the root.
func (s *Sharder) Deaf(now time.Time) {
	if !s.started || s.probing {
		return
	}
	s.resetEstimate(now)
}

// Update moves the sharder to now: a new epoch (a new position); at the
// level checks, a new level (see the package doc); one more ancestor joined
// for each LonelyWait a search stays lonely; shards left more than Linger
// ago dropped. It reports whether Home or Subscriptions changed.
func (s *Sharder) Update(now time.Time, searching, lonely bool) bool {
	changed := false
	old := s.Home()
	if !s.started {
		s.started, changed = true, true
		if s.probing {
			s.probeUntil = now.Add(probeTime)
		}
		s.epoch = s.epochAt(now)
		s.pos = positionHash(s.self, s.epoch)
		s.resetEstimate(now)
		old = s.Home()
	}
	if s.probing && !now.Before(s.probeUntil) {
		s.endProbe(now)
		changed = true
	}
	if e := s.epochAt(now); e != s.epoch {
		s.epoch = e
		s.pos = positionHash(s.self, e)
	}
	if !now.Before(s.check) {
		s.check = s.nextCheck(now)
		if !now.Before(s.since.Add(s.cfg.Window / 4)) {
			if l := s.wantLevel(now, !now.Before(s.since.Add(s.cfg.Window))); l != s.level {
				s.moveTo(l, now)
				if !s.lonelySince.IsZero() {
					s.lonelySince = now
				}
			}
		}
		if !s.probing { // the probe counts from its start, across checks
			s.levels = [MaxShardLevel + 1]uint16{}
		}
	}
	if home := s.Home(); home != old {
		changed = true
		if home.Level <= old.Level {
			s.leave(old, now) // a new epoch (moves made their own choice)
		}
	}
	if s.moved {
		s.moved, changed = false, true
	}
	if !searching {
		if s.up > 0 {
			changed = true
			for l := s.level - s.up; l < s.level; l++ {
				s.leave(s.Home().Ancestor(l), now)
			}
		}
		s.up, s.lonelySince = 0, time.Time{}
	} else if lonely {
		if s.lonelySince.IsZero() {
			s.lonelySince = now
		} else if s.up < s.level && now.Sub(s.lonelySince) >= s.cfg.LonelyWait {
			s.up = min(s.level, max(1, 2*s.up)) // 1, 2, 4, ... levels up
			s.lonelySince = now
			changed = true
		}
	} else {
		s.lonelySince = time.Time{}
	}
	for k := 0; k < len(s.linger); k++ {
		if l := s.linger[k]; !now.Before(l.until) || s.joined(l.sh) {
			s.linger = append(s.linger[:k], s.linger[k+1:]...)
			k--
			changed = true
		}
	}
	return changed
}

// leave keeps shard sh joined for Linger, unless we are in it anyway.
func (s *Sharder) leave(sh Shard, now time.Time) {
	if s.cfg.Linger <= 0 || s.joined(sh) {
		return
	}
	for k := range s.linger {
		if s.linger[k].sh == sh {
			s.linger[k].until = now.Add(s.cfg.Linger)
			return
		}
	}
	s.linger = append(s.linger, lingering{sh: sh, until: now.Add(s.cfg.Linger)})
}

// joined reports whether sh is home or one of the ancestors joined while
// lonely.
func (s *Sharder) joined(sh Shard) bool {
	home := s.Home()
	return sh.Level <= s.level && sh.Level+s.up >= s.level && home.Ancestor(sh.Level) == sh
}

func (s *Sharder) resetEstimate(now time.Time) {
	s.since, s.buckets, s.newest = now, [estimateBuckets]float64{}, 0
	s.check = s.nextCheck(now.Add(s.cfg.Window/4 - 1))
}

// nextCheck returns the first level check after t: checks fall on the
// multiples of Window/4 of wall-clock time, the same instants for every
// node, so that nodes that heard the same shard decide alike.
func (s *Sharder) nextCheck(t time.Time) time.Time {
	p := int64(max(1, s.cfg.Window/4))
	ns := t.UnixNano()
	next := (ns/p + 1) * p
	if ns < 0 && ns%p != 0 {
		next -= p
	}
	return time.Unix(0, next)
}

// wantLevel decides the level at a check, from what we heard on our home
// shard since the last one and the estimate c at our level (so a shard at
// level l would carry about c·2^(level-l)):
//
//   - If more than half of at least Target/2 messages came from senders at
//     one other level, we go there: nodes converge on the level of their
//     neighbours, and a newcomer on an ancestor, which hears the samples of
//     the deeper shards (see Publish), jumps to their level at once.
//   - Otherwise, with a full Window of data, we keep our level while our
//     shard carries between Target/2 and 2·Target; with less (a quarter
//     Window, after a change or at start) unless it carries over 8·Target
//     (quiet is cheap; crowds are not).
//   - Outside, we move to the level nearest to Target; a silent shard
//     moves us two levels up.
func (s *Sharder) wantLevel(now time.Time, full bool) uint8 {
	total, mode := 0, 0
	for l, n := range s.levels {
		total += int(n)
		if n > s.levels[mode] {
			mode = l
		}
	}
	if total >= s.cfg.Target/2 && 2*int(s.levels[mode]) > total && mode != int(s.level) && mode <= s.cfg.MaxLevel {
		return uint8(mode)
	}
	c, t := s.Estimate(now), float64(s.cfg.Target)
	if c >= t/2 && c <= 2*t || !full && c <= 8*t {
		return s.level
	}
	return s.nearest(c)
}

// nearest returns the level whose shard would carry about Target, given
// the estimate c at ours; two levels up if we heard nothing.
func (s *Sharder) nearest(c float64) uint8 {
	d := -2.0
	if c > 0 {
		d = math.Round(math.Log2(c / float64(s.cfg.Target)))
	}
	return uint8(max(0, min(float64(s.level)+d, float64(s.cfg.MaxLevel))))
}

func (s *Sharder) epochAt(now time.Time) int64 {
	t := now.UnixNano() + s.phase
	e := t / int64(s.cfg.Epoch)
	if t < 0 && t%int64(s.cfg.Epoch) != 0 {
		e--
	}
	return e
}

func positionHash(self PeerID, epoch int64) uint64 {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(epoch))
	h := sha256.Sum256(append(append([]byte("serendip/position\x00"), self...), b[:]...))
	return binary.BigEndian.Uint64(h[:8])
}

// NextWake returns when Update should run next at the latest: the next
// epoch, level check, lonely step or end of a linger.
func (s *Sharder) NextWake() time.Time {
	if !s.started {
		return time.Time{}
	}
	t := time.Unix(0, (s.epoch+1)*int64(s.cfg.Epoch)-s.phase)
	at := func(x time.Time) {
		if x.Before(t) {
			t = x
		}
	}
	at(s.check)
	if s.probing {
		at(s.probeUntil)
	}
	if !s.lonelySince.IsZero() && s.up < s.level {
		at(s.lonelySince.Add(s.cfg.LonelyWait))
	}
	for _, l := range s.linger {
		at(l.until)
	}
	return t
}

// Subscriptions appends to dst the shards whose topics we must be joined to:
// home; while a lonely search lasts, its nearest ancestors; and for Linger,
// the shards we left.
func (s *Sharder) Subscriptions(dst []Shard) []Shard {
	home := s.Home()
	dst = append(dst, home)
	for l := s.level - s.up; l < s.level; l++ {
		dst = append(dst, home.Ancestor(l))
	}
	for _, l := range s.linger {
		dst = append(dst, l.sh)
	}
	return dst
}

// Publish appends to dst the shards one announcement goes to. A searching
// announcement goes to home, to the shards we left less than Linger ago,
// to the ancestors we joined while lonely and then to the sibling of home
// (the other half of the parent; the node publishes there without joining
// it), and to
// each further ancestor k levels up with probability 2^-k, so that every
// ancestor carries about as much as a shard (a sample of its subtree, which
// tells newcomers and lonely nodes the network's size and who is searching).
// A withdraw (searching false) goes to every shard the search announced to.
func (s *Sharder) Publish(searching bool, dst []Shard) []Shard {
	if !searching {
		dst = append(dst, s.announce...)
		s.announce = s.announce[:0]
		return dst
	}
	if s.probing {
		return dst // not yet: Update reports a change when the probe ends
	}
	home := s.Home()
	from := len(dst)
	dst = append(dst, home)
	for l := int(s.level) - 1; l >= 0; l-- {
		k := int(s.level) - l
		if l >= int(s.level-s.up) || s.rng.Uint64()>>(64-min(k, 63)) == 0 {
			dst = append(dst, home.Ancestor(uint8(l)))
		}
	}
	if s.up > 0 {
		// Lonely: the sibling's newcomers claim us too (see the package
		// doc, Lonely nodes).
		dst = append(dst, Shard{Level: s.level, Index: home.Index ^ 1})
	}
	for _, l := range s.linger {
		dst = append(dst, l.sh) // those who know us from there still pair with us
	}
	for _, sh := range dst[from:] {
		known := false
		for _, a := range s.announce {
			if a == sh {
				known = true
				break
			}
		}
		if !known {
			s.announce = append(s.announce, sh)
		}
	}
	return dst
}
