package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

const testCandidate = `{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0}`

func validSignals() []Signal {
	return []Signal{
		{Kind: SignalHello, MatchID: "00112233445566778899aabbccddeeff"},
		{Kind: SignalHello, MatchID: strings.Repeat("m", MaxMatchIDSize)},
		{Kind: SignalOffer, SDP: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"},
		{Kind: SignalOffer, MatchID: "ab", SDP: strings.Repeat("a", MaxSignalSize-10)} /* exactly MaxSignalSize: 2 + (1+2) + (3+n) + 1 + 1 */, {Kind: SignalAnswer, SDP: "x"},
		{Kind: SignalAnswer, SDP: "v=0\r\n"},
		{Kind: SignalCandidate, Candidate: testCandidate},
		{Kind: SignalCandidate, MatchID: "x"}, // end of candidates
		{Kind: SignalBye, Reason: "next"},
		{Kind: SignalBye},
		{Kind: SignalBye, MatchID: "m", Reason: strings.Repeat("r", MaxReasonSize)},
		{Kind: SignalBye, Reason: "ünïcødé ☺"},
	}
}

func TestSignalRoundTrip(t *testing.T) {
	for _, s := range validSignals() {
		t.Run(s.Kind.String(), func(t *testing.T) {
			b, err := s.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if len(b) > MaxSignalSize {
				t.Fatalf("Marshal gave %d bytes", len(b))
			}
			got, err := ParseSignal(b)
			if err != nil {
				t.Fatalf("ParseSignal: %v", err)
			}
			if got != s {
				t.Fatalf("round trip: got %+v, want %+v", got, s)
			}

			var buf bytes.Buffer
			if err := WriteSignal(&buf, s); err != nil {
				t.Fatalf("WriteSignal: %v", err)
			}
			if err := WriteSignal(&buf, s); err != nil {
				t.Fatalf("WriteSignal: %v", err)
			}
			// Two frames back to back, read one byte at a time: ReadSignal must
			// not read past its frame.
			r := iotest.OneByteReader(&buf)
			for i := range 2 {
				got, err := ReadSignal(r)
				if err != nil {
					t.Fatalf("ReadSignal %d: %v", i, err)
				}
				if got != s {
					t.Fatalf("ReadSignal %d: got %+v, want %+v", i, got, s)
				}
			}
			if _, err := ReadSignal(r); err != io.EOF {
				t.Fatalf("ReadSignal at end: %v, want io.EOF", err)
			}
		})
	}
}

func TestSignalLayout(t *testing.T) {
	b, err := Signal{Kind: SignalBye, MatchID: "ab", Reason: "next"}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{1, 5, 2, 'a', 'b', 0, 0, 4, 'n', 'e', 'x', 't'}
	if !bytes.Equal(b, want) {
		t.Fatalf("got % x, want % x", b, want)
	}
}

// body builds a raw body: version, kind, then the given fields as
// uvarint-length-prefixed strings.
func body(version, kind byte, fields ...string) []byte {
	b := []byte{version, kind}
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

func TestParseSignalRejects(t *testing.T) {
	long := strings.Repeat("x", MaxSignalSize)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"one byte", []byte{1}, ErrMalformed},
		{"version 0", body(0, 5, "", "", "", ""), ErrVersion},
		{"version 2", body(2, 5, "", "", "", ""), ErrVersion},
		{"kind 0", body(1, 0, "", "", "", ""), ErrUnknownKind},
		{"kind 6", body(1, 6, "", "", "", ""), ErrUnknownKind},
		{"kind 255", body(1, 255, "", "", "", ""), ErrUnknownKind},
		{"no fields", []byte{1, 5}, ErrMalformed},
		{"three fields", body(1, 5, "", "", ""), ErrMalformed},
		{"trailing byte", append(body(1, 5, "", "", "", ""), 0), ErrMalformed},
		{"truncated field", body(1, 5, "", "", "", "next")[:9], ErrMalformed},
		{"length past end", []byte{1, 5, 0, 0, 0, 10, 'a'}, ErrMalformed},
		{"non-minimal length", []byte{1, 5, 0x80, 0x00, 0, 0, 0}, ErrMalformed},
		{"varint overflow", append([]byte{1, 5}, bytes.Repeat([]byte{0xff}, 11)...), ErrMalformed},
		{"bad utf8", body(1, 5, "", "", "", "\xff"), ErrMalformed},
		{"hello without match", body(1, 1, "", "", "", ""), ErrMalformed},
		{"hello with sdp", body(1, 1, "m", "v=0", "", ""), ErrMalformed},
		{"offer without sdp", body(1, 2, "m", "", "", ""), ErrMalformed},
		{"offer with reason", body(1, 2, "", "v=0", "", "why"), ErrMalformed},
		{"answer with candidate", body(1, 3, "", "v=0", testCandidate, ""), ErrMalformed},
		{"candidate with sdp", body(1, 4, "", "v=0", testCandidate, ""), ErrMalformed},
		{"candidate not json", body(1, 4, "", "", "candidate:1 1 udp", ""), ErrMalformed},
		{"candidate wrong json", body(1, 4, "", "", `{"candidate":5}`, ""), ErrMalformed},
		{"bye with sdp", body(1, 5, "", "v=0", "", ""), ErrMalformed},
		{"match id too long", body(1, 5, strings.Repeat("m", MaxMatchIDSize+1), "", "", ""), ErrTooLarge},
		{"reason too long", body(1, 5, "", "", "", strings.Repeat("r", MaxReasonSize+1)), ErrTooLarge},
		{"candidate too long", body(1, 4, "", "", `{"candidate":"`+strings.Repeat("c", MaxCandidateSize)+`"}`, ""), ErrTooLarge},
		{"body too long", body(1, 2, "", long, "", ""), ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSignal(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParseSignal = %+v, %v; want error %v", s, err, tc.want)
			}
		})
	}
}

func TestMarshalRejects(t *testing.T) {
	tests := []struct {
		s    Signal
		want error
	}{
		{Signal{}, ErrUnknownKind},
		{Signal{Kind: 9}, ErrUnknownKind},
		{Signal{Kind: SignalHello}, ErrMalformed},
		{Signal{Kind: SignalOffer}, ErrMalformed},
		{Signal{Kind: SignalBye, SDP: "v=0"}, ErrMalformed},
		{Signal{Kind: SignalBye, Reason: "\xc3"}, ErrMalformed},
		{Signal{Kind: SignalBye, Reason: strings.Repeat("r", MaxReasonSize+1)}, ErrTooLarge},
		{Signal{Kind: SignalOffer, SDP: strings.Repeat("s", MaxSignalSize)}, ErrTooLarge},
	}
	for _, tc := range tests {
		if _, err := tc.s.Marshal(); !errors.Is(err, tc.want) {
			t.Errorf("Marshal(%.60v) error %v, want %v", tc.s, err, tc.want)
		}
		if err := WriteSignal(io.Discard, tc.s); !errors.Is(err, tc.want) {
			t.Errorf("WriteSignal(%.60v) error %v, want %v", tc.s, err, tc.want)
		}
	}
}

// countingReader fails the test if more than limit bytes are read.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReadSignalRejects(t *testing.T) {
	frame := func(n uint64, rest ...byte) []byte { return append(binary.AppendUvarint(nil, n), rest...) }
	good, _ := Signal{Kind: SignalBye, Reason: "stop"}.Marshal()
	tests := []struct {
		name    string
		in      []byte
		want    error
		maxRead int // how much ReadSignal may consume
	}{
		{"zero length", frame(0), ErrMalformed, 1},
		{"over limit", frame(MaxSignalSize + 1), ErrTooLarge, 3},
		{"huge length", frame(1 << 40), ErrTooLarge, 3},
		{"endless varint", bytes.Repeat([]byte{0xff}, 100), ErrTooLarge, 3},
		{"non-minimal length", []byte{0x85, 0x00}, ErrMalformed, 2},
		{"cut in length", []byte{0x85}, io.ErrUnexpectedEOF, 1},
		{"cut in body", frame(uint64(len(good)), good[:3]...), io.ErrUnexpectedEOF, 100},
		{"bad body", frame(2, 9, 9), ErrVersion, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &countingReader{r: bytes.NewReader(tc.in)}
			_, err := ReadSignal(r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ReadSignal error %v, want %v", err, tc.want)
			}
			if r.n > tc.maxRead {
				t.Fatalf("read %d bytes, want at most %d", r.n, tc.maxRead)
			}
		})
	}
	if _, err := ReadSignal(bytes.NewReader(nil)); err != io.EOF {
		t.Fatalf("empty stream: %v, want io.EOF", err)
	}
}

// TestReadSignalRefusesBeforeAllocating: a length over the limit is refused
// before the body is allocated.
func TestReadSignalRefusesBeforeAllocating(t *testing.T) {
	in := binary.AppendUvarint(nil, MaxSignalSize+1)
	const runs = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		if _, err := ReadSignal(bytes.NewReader(in)); !errors.Is(err, ErrTooLarge) {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 4096 {
		t.Fatalf("%d bytes allocated per refused frame", perRun)
	}
}

func FuzzParseSignal(f *testing.F) {
	for _, s := range validSignals() {
		if b, err := s.Marshal(); err == nil && len(b) < 4096 {
			f.Add(b)
		}
	}
	f.Add([]byte{1, 5, 0x80, 0x00, 0, 0, 0})
	f.Add([]byte{1, 4, 0, 0, 2, '{', '}', 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSignal(b)
		if err != nil {
			if s != (Signal{}) {
				t.Fatalf("error %v with non-zero signal %+v", err, s)
			}
			return
		}
		out, err := s.Marshal()
		if err != nil {
			t.Fatalf("parsed %+v but Marshal fails: %v", s, err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("Marshal(Parse(b)) != b:\n% x\n% x", out, b)
		}
		again, err := ParseSignal(out)
		if err != nil || again != s {
			t.Fatalf("Parse(Marshal(s)) = %+v, %v; want %+v", again, err, s)
		}
		// The framed form reads back the same.
		var buf bytes.Buffer
		if err := WriteSignal(&buf, s); err != nil {
			t.Fatalf("WriteSignal: %v", err)
		}
		if got, err := ReadSignal(&buf); err != nil || got != s {
			t.Fatalf("ReadSignal = %+v, %v; want %+v", got, err, s)
		}
	})
}

func FuzzReadSignal(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteSignal(&buf, Signal{Kind: SignalBye, Reason: "next"})
	f.Add(buf.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &countingReader{r: bytes.NewReader(b)}
		s, err := ReadSignal(r)
		if err != nil {
			return
		}
		// A frame was accepted: it is exactly what WriteSignal writes.
		var out bytes.Buffer
		if err := WriteSignal(&out, s); err != nil {
			t.Fatalf("WriteSignal: %v", err)
		}
		if !bytes.Equal(out.Bytes(), b[:r.n]) {
			t.Fatalf("frame does not round-trip")
		}
	})
}
