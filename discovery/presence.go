package discovery

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Presence limits. See doc.go for the byte layout.
const (
	PresenceVersion = 2    // first byte of every presence message
	MaxPresenceSize = 4096 // bytes, whole message
	MaxInterests    = 16   // tags per presence
	MaxInterestLen  = 32   // bytes per tag
	MaxAddrs        = 16   // multiaddrs per presence
	MaxAddrLen      = 256  // bytes per multiaddr
)

const (
	presenceHeaderLen = 1 + 1 + 1 + 8 + 8 + 8 // version, flags, level, seq, expires, key
	flagSearching     = 0x01
)

// Presence is the payload of one message on the presence topic. The sender is
// the message's signed From field, so no peer id is inside.
type Presence struct {
	Seq       uint64 // strictly increasing per sender (see SeqTracker)
	Expires   int64  // unix milliseconds
	Searching bool   // false = withdraw: "I am no longer available"
	// Level is the sender's shard level (see Sharder), at most
	// MaxShardLevel. Receivers weigh it in their estimate of the network.
	Level uint8
	// Key is the sender's pairing key for the current search (see the
	// package doc, Matching): random, fixed for one search.
	Key       uint64
	Interests []string // at most MaxInterests tags, each a valid interest (see ValidInterest)
	Addrs     [][]byte // the sender's multiaddrs as raw bytes; opaque here
}

// ExpiresAt returns Expires as a time.Time.
func (p Presence) ExpiresAt() time.Time { return time.UnixMilli(p.Expires) }

// Seen turns a presence received from peer into the matcher's event.
func (p Presence) Seen(from PeerID) PresenceSeen {
	return PresenceSeen{Peer: from, Expires: p.ExpiresAt(), Searching: p.Searching, Key: p.Key, Interests: p.Interests}
}

// Marshal encodes p. It fails with ErrTooLarge or ErrMalformed if p breaks a
// limit or holds an invalid interest; what it returns ParsePresence accepts.
func (p Presence) Marshal() ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	size := presenceHeaderLen + 2
	for _, t := range p.Interests {
		size += 1 + len(t)
	}
	for _, a := range p.Addrs {
		size += 2 + len(a)
	}
	if size > MaxPresenceSize {
		return nil, fmt.Errorf("presence of %d bytes over %d: %w", size, MaxPresenceSize, ErrTooLarge)
	}
	b := make([]byte, 0, size)
	var flags byte
	if p.Searching {
		flags |= flagSearching
	}
	b = append(b, PresenceVersion, flags, p.Level)
	b = binary.BigEndian.AppendUint64(b, p.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Expires))
	b = binary.BigEndian.AppendUint64(b, p.Key)
	b = append(b, byte(len(p.Interests)))
	for _, t := range p.Interests {
		b = append(b, byte(len(t)))
		b = append(b, t...)
	}
	b = append(b, byte(len(p.Addrs)))
	for _, a := range p.Addrs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(a)))
		b = append(b, a...)
	}
	return b, nil
}

// ParsePresence decodes a presence message strictly: the exact layout of
// doc.go, every limit, no trailing bytes. The result shares no memory with b.
// Empty lists decode as nil.
func ParsePresence(b []byte) (Presence, error) {
	var p Presence
	if len(b) > MaxPresenceSize {
		return p, fmt.Errorf("presence of %d bytes over %d: %w", len(b), MaxPresenceSize, ErrTooLarge)
	}
	if len(b) == 0 {
		return p, fmt.Errorf("empty presence: %w", ErrMalformed)
	}
	if b[0] != PresenceVersion {
		return p, fmt.Errorf("presence version %d: %w", b[0], ErrVersion)
	}
	r := reader{b: b[1:]}
	flags := r.byte()
	p.Level = r.byte()
	p.Seq = r.uint64()
	p.Expires = int64(r.uint64())
	p.Key = r.uint64()
	if r.err == nil && p.Level > MaxShardLevel {
		return Presence{}, fmt.Errorf("presence: level %d over %d: %w", p.Level, MaxShardLevel, ErrMalformed)
	}
	n := int(r.byte())
	if r.err == nil && n > MaxInterests {
		return Presence{}, fmt.Errorf("%d interests over %d: %w", n, MaxInterests, ErrTooLarge)
	}
	for i := 0; i < n && r.err == nil; i++ {
		l := int(r.byte())
		if r.err == nil && l > MaxInterestLen {
			return Presence{}, fmt.Errorf("interest of %d bytes over %d: %w", l, MaxInterestLen, ErrTooLarge)
		}
		t := string(r.bytes(l))
		if r.err != nil {
			break
		}
		if err := ValidInterest(t); err != nil {
			return Presence{}, err
		}
		p.Interests = append(p.Interests, t)
	}
	na := int(r.byte())
	if r.err == nil && na > MaxAddrs {
		return Presence{}, fmt.Errorf("%d addrs over %d: %w", na, MaxAddrs, ErrTooLarge)
	}
	for i := 0; i < na && r.err == nil; i++ {
		l := int(r.uint16())
		if r.err == nil && l > MaxAddrLen {
			return Presence{}, fmt.Errorf("addr of %d bytes over %d: %w", l, MaxAddrLen, ErrTooLarge)
		}
		if r.err == nil && l == 0 {
			return Presence{}, fmt.Errorf("empty addr: %w", ErrMalformed)
		}
		a := r.bytes(l)
		if r.err != nil {
			break
		}
		p.Addrs = append(p.Addrs, append([]byte(nil), a...))
	}
	if r.err != nil {
		return Presence{}, fmt.Errorf("presence: %w", r.err)
	}
	if len(r.b) != 0 {
		return Presence{}, fmt.Errorf("presence: %d trailing bytes: %w", len(r.b), ErrMalformed)
	}
	if flags&^flagSearching != 0 {
		return Presence{}, fmt.Errorf("presence: unknown flags %#x: %w", flags, ErrMalformed)
	}
	p.Searching = flags&flagSearching != 0
	if err := checkDuplicates(p.Interests); err != nil {
		return Presence{}, err
	}
	return p, nil
}

// Check reports whether p may be accepted at now: its content is valid, it has
// not expired (ErrExpired) and it does not expire more than maxTTL after now
// (ErrExpiresTooFar). maxTTL should be the sender's PresenceTTL plus the clock
// skew tolerated between nodes.
func (p Presence) Check(now time.Time, maxTTL time.Duration) error {
	if err := p.validate(); err != nil {
		return err
	}
	nowMs := now.UnixMilli()
	if p.Expires <= nowMs {
		return fmt.Errorf("presence expired %dms ago: %w", nowMs-p.Expires, ErrExpired)
	}
	limit := int64(math.MaxInt64)
	if ttl := maxTTL.Milliseconds(); nowMs < 0 || ttl < math.MaxInt64-nowMs {
		limit = nowMs + ttl
	}
	if p.Expires > limit {
		return fmt.Errorf("presence expires %dms from now, limit %v: %w", p.Expires-nowMs, maxTTL, ErrExpiresTooFar)
	}
	return nil
}

func (p Presence) validate() error {
	if p.Level > MaxShardLevel {
		return fmt.Errorf("presence: level %d over %d: %w", p.Level, MaxShardLevel, ErrMalformed)
	}
	if len(p.Interests) > MaxInterests {
		return fmt.Errorf("%d interests over %d: %w", len(p.Interests), MaxInterests, ErrTooLarge)
	}
	for _, t := range p.Interests {
		if err := ValidInterest(t); err != nil {
			return err
		}
	}
	if err := checkDuplicates(p.Interests); err != nil {
		return err
	}
	if len(p.Addrs) > MaxAddrs {
		return fmt.Errorf("%d addrs over %d: %w", len(p.Addrs), MaxAddrs, ErrTooLarge)
	}
	for _, a := range p.Addrs {
		if len(a) > MaxAddrLen {
			return fmt.Errorf("addr of %d bytes over %d: %w", len(a), MaxAddrLen, ErrTooLarge)
		}
		if len(a) == 0 {
			return fmt.Errorf("empty addr: %w", ErrMalformed)
		}
	}
	return nil
}

func checkDuplicates(tags []string) error {
	for i := range tags {
		for j := i + 1; j < len(tags); j++ {
			if tags[i] == tags[j] {
				return fmt.Errorf("duplicate interest %q: %w", tags[i], ErrMalformed)
			}
		}
	}
	return nil
}

// ValidInterest reports whether t may be sent as an interest tag: 1 to
// MaxInterestLen bytes of valid UTF-8, already lower-case, printable, with no
// white space. Errors wrap ErrTooLarge or ErrMalformed.
func ValidInterest(t string) error {
	switch {
	case len(t) == 0:
		return fmt.Errorf("empty interest: %w", ErrMalformed)
	case len(t) > MaxInterestLen:
		return fmt.Errorf("interest of %d bytes over %d: %w", len(t), MaxInterestLen, ErrTooLarge)
	case !utf8.ValidString(t):
		return fmt.Errorf("interest %q is not UTF-8: %w", t, ErrMalformed)
	case strings.ToLower(t) != t:
		return fmt.Errorf("interest %q is not lower-case: %w", t, ErrMalformed)
	}
	for _, r := range t {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return fmt.Errorf("interest %q has character %U: %w", t, r, ErrMalformed)
		}
	}
	return nil
}

// NormalizeInterests turns what a user typed into tags that ValidInterest
// accepts: trimmed, lower-cased, inner white space replaced by '-', invalid
// and duplicate tags dropped, at most MaxInterests kept, order preserved.
func NormalizeInterests(in []string) []string {
	var out []string
	for _, t := range in {
		if !utf8.ValidString(t) {
			continue
		}
		t = strings.Join(strings.Fields(strings.ToLower(t)), "-")
		if ValidInterest(t) != nil || contains(out, t) {
			continue
		}
		out = append(out, t)
		if len(out) == MaxInterests {
			break
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// reader is a cursor over a byte slice with a sticky error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = fmt.Errorf("truncated: need %d bytes, have %d: %w", n, len(r.b), ErrMalformed)
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) uint16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) uint64() uint64 {
	if v := r.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (r *reader) bytes(n int) []byte { return r.take(n) }
