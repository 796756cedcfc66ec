package discovery

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestClaimRoundTrip(t *testing.T) {
	for _, c := range []Claim{{}, {ID: MatchID{1, 2, 3}, Ticket: 42}, {ID: MatchID{15: 0xff}, Ticket: 1<<64 - 1}} {
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseClaim(b)
		if err != nil || got != c {
			t.Fatalf("%+v: got %+v, %v", c, got, err)
		}
	}
	c := Claim{ID: MatchID{0: 0xab, 15: 0xcd}, Ticket: 0x0102030405060708}
	b, _ := c.Marshal()
	if got, want := hex.EncodeToString(b), "0101ab0000000000000000000000000000cd0102030405060708"; got != want {
		t.Fatalf("layout: got %s want %s", got, want)
	}
}

func TestReplyRoundTrip(t *testing.T) {
	for v := Accept; v <= RefuseTimeout; v++ {
		r := Reply{ID: MatchID{byte(v)}, Verdict: v}
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseReply(b)
		if err != nil || got != r {
			t.Fatalf("%+v: got %+v, %v", r, got, err)
		}
		if strings.HasPrefix(v.String(), "verdict(") {
			t.Fatalf("no name for %d", v)
		}
	}
	for _, v := range []Verdict{0, RefuseTimeout + 1, 255} {
		if _, err := (Reply{Verdict: v}).Marshal(); !errors.Is(err, ErrMalformed) {
			t.Fatalf("verdict %d: %v", v, err)
		}
	}
	b, _ := Reply{ID: MatchID{0: 0xab}, Verdict: RefuseCrossing}.Marshal()
	if got, want := hex.EncodeToString(b), "0102ab00000000000000000000000000000003"; got != want {
		t.Fatalf("layout: got %s want %s", got, want)
	}
}

func TestParseClaimReplyRefuse(t *testing.T) {
	claim, _ := Claim{Ticket: 1}.Marshal()
	reply, _ := Reply{Verdict: Accept}.Marshal()
	with := func(b []byte, i int, v byte) []byte { b = append([]byte(nil), b...); b[i] = v; return b }
	tests := []struct {
		name  string
		parse func([]byte) error
		b     []byte
		err   error
	}{
		{"claim empty", parseClaimErr, nil, ErrMalformed},
		{"claim version", parseClaimErr, with(claim, 0, 2), ErrVersion},
		{"claim kind", parseClaimErr, with(claim, 1, 2), ErrMalformed},
		{"claim trailing", parseClaimErr, append(append([]byte(nil), claim...), 0), ErrMalformed},
		{"claim oversized", parseClaimErr, make([]byte, MaxClaimFrame+1), ErrTooLarge},
		{"reply as claim", parseClaimErr, reply, ErrMalformed},
		{"reply empty", parseReplyErr, nil, ErrMalformed},
		{"reply version", parseReplyErr, with(reply, 0, 0), ErrVersion},
		{"reply kind", parseReplyErr, with(reply, 1, 1), ErrMalformed},
		{"reply verdict 0", parseReplyErr, with(reply, 18, 0), ErrMalformed},
		{"reply verdict 7", parseReplyErr, with(reply, 18, 7), ErrMalformed},
		{"reply trailing", parseReplyErr, append(append([]byte(nil), reply...), 0), ErrMalformed},
		{"claim as reply", parseReplyErr, claim, ErrMalformed},
	}
	for n := 1; n < len(claim); n++ {
		tests = append(tests, struct {
			name  string
			parse func([]byte) error
			b     []byte
			err   error
		}{"claim truncated", parseClaimErr, claim[:n], ErrMalformed})
	}
	for n := 1; n < len(reply); n++ {
		tests = append(tests, struct {
			name  string
			parse func([]byte) error
			b     []byte
			err   error
		}{"reply truncated", parseReplyErr, reply[:n], ErrMalformed})
	}
	for _, tt := range tests {
		if err := tt.parse(tt.b); !errors.Is(err, tt.err) {
			t.Errorf("%s (%x): got %v, want %v", tt.name, tt.b, err, tt.err)
		}
	}
}

func parseClaimErr(b []byte) error { _, err := ParseClaim(b); return err }
func parseReplyErr(b []byte) error { _, err := ParseReply(b); return err }

func TestMatchID(t *testing.T) {
	id := MatchID{0: 0x01, 15: 0xfe}
	s := id.String()
	if s != "010000000000000000000000000000fe" {
		t.Fatal(s)
	}
	got, err := ParseMatchID(s)
	if err != nil || got != id {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", "01", s + "00", strings.Replace(s, "fe", "zz", 1)} {
		if _, err := ParseMatchID(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	if !(MatchID{}).IsZero() || id.IsZero() {
		t.Fatal("IsZero")
	}
}

func TestClaimLess(t *testing.T) {
	a := Claim{ID: MatchID{9}, Ticket: 1}
	b := Claim{ID: MatchID{1}, Ticket: 2}
	c := Claim{ID: MatchID{2}, Ticket: 2}
	if !a.Less(b) || b.Less(a) || !b.Less(c) || c.Less(b) || a.Less(a) {
		t.Fatal("order")
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	c := Claim{ID: MatchID{7}, Ticket: 99}
	if err := WriteClaim(&buf, c); err != nil {
		t.Fatal(err)
	}
	if err := WriteReply(&buf, Reply{ID: c.ID, Verdict: RefuseBusy}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 2+claimLen+2+replyLen {
		t.Fatalf("%d bytes", buf.Len())
	}
	got, err := ReadClaim(iotest.OneByteReader(&buf))
	if err != nil || got != c {
		t.Fatalf("claim %+v %v", got, err)
	}
	rep, err := ReadReply(&buf, c.ID)
	if err != nil || rep.Verdict != RefuseBusy {
		t.Fatalf("reply %+v %v", rep, err)
	}
	if _, err := ReadFrame(&buf, MaxClaimFrame); err != io.EOF {
		t.Fatalf("clean end: %v", err)
	}

	buf.Reset()
	_ = WriteReply(&buf, Reply{ID: MatchID{1}, Verdict: Accept})
	if _, err := ReadReply(&buf, MatchID{2}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("wrong id: %v", err)
	}

	tests := []struct {
		name string
		in   []byte
		err  error
	}{
		{"one byte", []byte{0}, ErrMalformed},
		{"zero length", []byte{0, 0}, ErrMalformed},
		{"over max", []byte{0, MaxClaimFrame + 1}, ErrTooLarge},
		{"huge", []byte{0xff, 0xff}, ErrTooLarge},
		{"cut payload", []byte{0, 3, 1, 2}, ErrMalformed},
		{"no payload", []byte{0, 3}, ErrMalformed},
	}
	for _, tt := range tests {
		if _, err := ReadFrame(bytes.NewReader(tt.in), MaxClaimFrame); !errors.Is(err, tt.err) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.err)
		}
	}
	boom := errors.New("boom")
	if _, err := ReadFrame(iotest.ErrReader(boom), MaxClaimFrame); !errors.Is(err, boom) {
		t.Errorf("read error: %v", err)
	}
	if err := WriteFrame(io.Discard, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty write: %v", err)
	}
	if err := WriteFrame(io.Discard, make([]byte, MaxFrame+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("huge write: %v", err)
	}
}
