package discovery

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func maxPresence() Presence {
	p := Presence{Seq: 1<<64 - 1, Expires: 1<<63 - 1, Searching: true, Level: MaxShardLevel, Key: 1<<64 - 1}
	for i := 0; i < MaxInterests; i++ {
		p.Interests = append(p.Interests, strings.Repeat(string(rune('a'+i)), MaxInterestLen))
	}
	// 27 header + 1 + 16*33 + 1 = 557 bytes; addrs fill the rest up to
	// exactly MaxPresenceSize.
	left := MaxPresenceSize - 557
	for i := 0; i < MaxAddrs && left > 2; i++ {
		n := min(MaxAddrLen, left-2)
		p.Addrs = append(p.Addrs, bytes.Repeat([]byte{byte(i)}, n))
		left -= 2 + n
	}
	return p
}

func TestPresenceRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		p    Presence
	}{
		{"zero", Presence{}},
		{"withdraw", Presence{Seq: 7, Expires: 1700000000000}},
		{"searching", Presence{Seq: 8, Expires: 1700000000000, Searching: true}},
		{"sharded", Presence{Seq: 8, Expires: 1700000000000, Searching: true, Level: 7, Key: 0xdeadbeef}},
		{"interests", Presence{Seq: 9, Expires: 1, Searching: true, Interests: []string{"go", "música", "rock-n-roll"}}},
		{"addrs", Presence{Seq: 10, Expires: -5, Addrs: [][]byte{{4, 127, 0, 0, 1}, bytes.Repeat([]byte{1}, MaxAddrLen)}}},
		{"max", maxPresence()},
	}
	if b, _ := maxPresence().Marshal(); len(b) != MaxPresenceSize {
		t.Fatalf("maxPresence is %d bytes", len(b))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > MaxPresenceSize {
				t.Fatalf("%d bytes", len(b))
			}
			got, err := ParsePresence(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.p) {
				t.Fatalf("got %+v, want %+v", got, tt.p)
			}
		})
	}
}

func TestPresenceLayout(t *testing.T) {
	p := Presence{Seq: 0x0102030405060708, Expires: 0x1112131415161718, Searching: true, Level: 9, Key: 0x2122232425262728,
		Interests: []string{"go"}, Addrs: [][]byte{{0xaa, 0xbb}}}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := "02" + "01" + "09" + "0102030405060708" + "1112131415161718" + "2122232425262728" +
		"01" + "02" + hex.EncodeToString([]byte("go")) + "01" + "0002" + "aabb"
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestPresenceMarshalRefuses(t *testing.T) {
	tooMany := make([]string, MaxInterests+1)
	for i := range tooMany {
		tooMany[i] = string(rune('a' + i))
	}
	over := maxPresence()
	over.Addrs[len(over.Addrs)-1] = append(over.Addrs[len(over.Addrs)-1], 1)
	tests := []struct {
		name string
		p    Presence
		err  error
	}{
		{"too many interests", Presence{Interests: tooMany}, ErrTooLarge},
		{"long interest", Presence{Interests: []string{strings.Repeat("a", MaxInterestLen+1)}}, ErrTooLarge},
		{"upper-case", Presence{Interests: []string{"Go"}}, ErrMalformed},
		{"space", Presence{Interests: []string{"a b"}}, ErrMalformed},
		{"empty interest", Presence{Interests: []string{""}}, ErrMalformed},
		{"not utf-8", Presence{Interests: []string{"\xff"}}, ErrMalformed},
		{"control", Presence{Interests: []string{"a\x00"}}, ErrMalformed},
		{"duplicate", Presence{Interests: []string{"go", "go"}}, ErrMalformed},
		{"too many addrs", Presence{Addrs: make([][]byte, MaxAddrs+1)}, ErrTooLarge},
		{"long addr", Presence{Addrs: [][]byte{make([]byte, MaxAddrLen+1)}}, ErrTooLarge},
		{"empty addr", Presence{Addrs: [][]byte{{}}}, ErrMalformed},
		{"over size", over, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.p.Marshal(); !errors.Is(err, tt.err) {
				t.Fatalf("got %v, want %v", err, tt.err)
			}
		})
	}
}

func TestParsePresenceRefuses(t *testing.T) {
	good, err := Presence{Seq: 1, Expires: 2, Searching: true, Interests: []string{"go"}, Addrs: [][]byte{{1, 2}}}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		b    []byte
		err  error
	}{
		{"empty", nil, ErrMalformed},
		{"version 0", mod(func(b []byte) []byte { b[0] = 0; return b }), ErrVersion},
		{"version 1", mod(func(b []byte) []byte { b[0] = 1; return b }), ErrVersion},
		{"version 3", mod(func(b []byte) []byte { b[0] = 3; return b }), ErrVersion},
		{"unknown flag", mod(func(b []byte) []byte { b[1] = 0x03; return b }), ErrMalformed},
		{"level 31", mod(func(b []byte) []byte { b[2] = MaxShardLevel + 1; return b }), ErrMalformed},
		{"trailing byte", mod(func(b []byte) []byte { return append(b, 0) }), ErrMalformed},
		{"17 interests", mod(func(b []byte) []byte { b[27] = 17; return b }), ErrTooLarge},
		{"interest length 33", mod(func(b []byte) []byte { b[28] = 33; return b }), ErrTooLarge},
		{"interest length 0", mod(func(b []byte) []byte { b[28] = 0; return b }), ErrMalformed},
		{"upper-case interest", mod(func(b []byte) []byte { b[29] = 'G'; return b }), ErrMalformed},
		{"17 addrs", mod(func(b []byte) []byte { b[31] = 17; return b }), ErrTooLarge},
		{"addr length 257", mod(func(b []byte) []byte { b[32], b[33] = 1, 1; return b }), ErrTooLarge},
		{"addr length 0", mod(func(b []byte) []byte { b[32], b[33] = 0, 0; return b[:34] }), ErrMalformed},
		{"oversized", make([]byte, MaxPresenceSize+1), ErrTooLarge},
		{"duplicate interests", mustHex(t, "02"+"01"+"00"+"0000000000000001"+"0000000000000002"+"0000000000000003"+"02"+"01"+"61"+"01"+"61"+"00"), ErrMalformed},
	}
	for n := 1; n < len(good); n++ {
		tests = append(tests, struct {
			name string
			b    []byte
			err  error
		}{"truncated", good[:n], ErrMalformed})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParsePresence(tt.b); !errors.Is(err, tt.err) {
				t.Fatalf("%x: got %v, want %v", tt.b, err, tt.err)
			}
		})
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPresenceCheck(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	ttl := 20 * time.Second
	tests := []struct {
		name    string
		expires time.Time
		err     error
	}{
		{"fresh", now.Add(ttl), nil},
		{"soon", now.Add(time.Millisecond), nil},
		{"now", now, ErrExpired},
		{"past", now.Add(-time.Second), ErrExpired},
		{"too far", now.Add(ttl + time.Millisecond), ErrExpiresTooFar},
		{"max", time.UnixMilli(1<<63 - 1), ErrExpiresTooFar},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Presence{Expires: tt.expires.UnixMilli()}
			if err := p.Check(now, ttl); !errors.Is(err, tt.err) {
				t.Fatalf("got %v, want %v", err, tt.err)
			}
		})
	}
	if err := (Presence{Expires: now.Add(time.Second).UnixMilli(), Interests: []string{"A"}}).Check(now, ttl); !errors.Is(err, ErrMalformed) {
		t.Fatalf("invalid content: got %v", err)
	}
	// The limit saturates instead of overflowing.
	if err := (Presence{Expires: 1<<63 - 1}).Check(time.UnixMilli(1<<63-11), time.Hour); err != nil {
		t.Fatalf("end of time: %v", err)
	}
}

func TestNormalizeInterests(t *testing.T) {
	in := []string{" Go ", "go", "Rock  Music", "", "\xff", strings.Repeat("x", 33), "ÉTÉ"}
	for i := 0; i < 20; i++ {
		in = append(in, string(rune('a'+i)))
	}
	got := NormalizeInterests(in)
	want := []string{"go", "rock-music", "été", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if _, err := (Presence{Interests: got}).Marshal(); err != nil {
		t.Fatal(err)
	}
}

func TestPresenceSeen(t *testing.T) {
	p := Presence{Seq: 3, Expires: 1_700_000_000_123, Searching: true, Key: 42, Interests: []string{"go"}}
	got := p.Seen("peer")
	want := PresenceSeen{Peer: "peer", Expires: time.UnixMilli(1_700_000_000_123), Searching: true, Key: 42, Interests: []string{"go"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v", got)
	}
	a := Announce{Searching: true, Interests: []string{"go"}, Expires: time.UnixMilli(1_700_000_000_123), Key: 42}
	if got := a.Presence(3, nil); !reflect.DeepEqual(got, p) {
		t.Fatalf("Announce.Presence: got %+v", got)
	}
	if PresenceTopic("main") != "serendip/main/presence/1" {
		t.Fatal(PresenceTopic("main"))
	}
}
