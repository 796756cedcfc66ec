package media

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/pion/webrtc/v4"
)

// Wire limits. See the package documentation for the layout.
const (
	// SignalVersion is the wire version written by Marshal and the only one
	// ParseSignal accepts.
	SignalVersion = 1

	// MaxSignalSize bounds one marshalled signal (the frame body, without its
	// length prefix). ReadSignal refuses longer frames before allocating.
	MaxSignalSize = 64 << 10

	// MaxMatchIDSize bounds Signal.MatchID.
	MaxMatchIDSize = 64
	// MaxCandidateSize bounds Signal.Candidate (one ICE candidate as JSON).
	MaxCandidateSize = 4 << 10
	// MaxReasonSize bounds Signal.Reason.
	MaxReasonSize = 256
)

// SignalKind says what a Signal carries.
type SignalKind uint8

// Signal kinds. The numbers are on the wire: never renumber them.
const (
	// SignalHello is the first frame on a signal stream; it carries the MatchID
	// so the receiver can bind the stream to its match.
	SignalHello SignalKind = 1
	// SignalOffer carries the offerer's SDP.
	SignalOffer SignalKind = 2
	// SignalAnswer carries the answerer's SDP.
	SignalAnswer SignalKind = 3
	// SignalCandidate carries one trickled ICE candidate as JSON
	// (webrtc.ICECandidateInit); an empty Candidate means end of candidates.
	SignalCandidate SignalKind = 4
	// SignalBye ends the call; Reason says why ("next", "stop", "timeout").
	SignalBye SignalKind = 5
)

func (k SignalKind) String() string {
	switch k {
	case SignalHello:
		return "hello"
	case SignalOffer:
		return "offer"
	case SignalAnswer:
		return "answer"
	case SignalCandidate:
		return "candidate"
	case SignalBye:
		return "bye"
	default:
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
}

func (k SignalKind) valid() bool { return k >= SignalHello && k <= SignalBye }

// Signal is one signalling message between the two ends of a call. Which fields
// may be set depends on Kind:
//
//	Kind       MatchID     SDP        Candidate   Reason
//	hello      required    -          -           -
//	offer      optional    required   -           -
//	answer     optional    required   -           -
//	candidate  optional    -          optional    -
//	bye        optional    -          -           optional
//
// ("-" means it must be empty.) All strings must be valid UTF-8.
type Signal struct {
	Kind SignalKind
	// MatchID is opaque to this package (the node uses the hex of 16 random
	// bytes); at most MaxMatchIDSize bytes.
	MatchID string
	// SDP is the session description of an offer or answer.
	SDP string
	// Candidate is the JSON of a webrtc.ICECandidateInit; "" means end of
	// candidates. At most MaxCandidateSize bytes.
	Candidate string
	// Reason says why a call ended (bye only); at most MaxReasonSize bytes.
	Reason string
}

// Validate reports whether s obeys the rules of its kind and the size limits.
// Errors wrap ErrUnknownKind, ErrTooLarge or ErrMalformed.
func (s Signal) Validate() error {
	if !s.Kind.valid() {
		return fmt.Errorf("%w: %d", ErrUnknownKind, uint8(s.Kind))
	}
	fields := [...]struct {
		name, val string
		max       int
	}{
		{"match id", s.MatchID, MaxMatchIDSize},
		{"sdp", s.SDP, MaxSignalSize},
		{"candidate", s.Candidate, MaxCandidateSize},
		{"reason", s.Reason, MaxReasonSize},
	}
	for _, f := range fields {
		if len(f.val) > f.max {
			return fmt.Errorf("%w: %s: %s is %d bytes, limit %d", ErrTooLarge, s.Kind, f.name, len(f.val), f.max)
		}
		if !utf8.ValidString(f.val) {
			return fmt.Errorf("%w: %s: %s is not valid UTF-8", ErrMalformed, s.Kind, f.name)
		}
	}
	for i, rule := range fieldRules[s.Kind] {
		f := fields[i]
		switch {
		case rule == required && f.val == "":
			return fmt.Errorf("%w: %s without %s", ErrMalformed, s.Kind, f.name)
		case rule == forbidden && f.val != "":
			return fmt.Errorf("%w: %s must not carry a %s", ErrMalformed, s.Kind, f.name)
		}
	}
	if s.Kind == SignalCandidate && s.Candidate != "" {
		var c webrtc.ICECandidateInit
		if err := json.Unmarshal([]byte(s.Candidate), &c); err != nil {
			return fmt.Errorf("%w: candidate is not ICECandidateInit JSON: %v", ErrMalformed, err)
		}
	}
	if n := s.size(); n > MaxSignalSize {
		return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, s.Kind, n, MaxSignalSize)
	}
	return nil
}

type fieldRule uint8

const (
	forbidden fieldRule = iota
	optional
	required
)

// fieldRules says, per kind, which of MatchID, SDP, Candidate, Reason (in that
// order) may or must be set. It is the table in the Signal documentation.
var fieldRules = map[SignalKind][4]fieldRule{
	SignalHello:     {required, forbidden, forbidden, forbidden},
	SignalOffer:     {optional, required, forbidden, forbidden},
	SignalAnswer:    {optional, required, forbidden, forbidden},
	SignalCandidate: {optional, forbidden, optional, forbidden},
	SignalBye:       {optional, forbidden, forbidden, optional},
}

func (s Signal) fields() [4]string { return [4]string{s.MatchID, s.SDP, s.Candidate, s.Reason} }

func (s Signal) size() int {
	n := 2
	for _, f := range s.fields() {
		n += uvarintLen(uint64(len(f))) + len(f)
	}
	return n
}

// Marshal encodes s in the version 1 wire layout (without the frame length
// prefix). It fails if s does not Validate.
func (s Signal) Marshal() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, s.size())
	b = append(b, SignalVersion, byte(s.Kind))
	for _, f := range s.fields() {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b, nil
}

// ParseSignal decodes one signal in the version 1 wire layout. It is strict: it
// refuses other versions, unknown kinds, non-minimal varints, truncated or
// oversized fields, trailing bytes, and anything Validate refuses. For every
// input it accepts, Marshal of the result gives back the same bytes.
func ParseSignal(b []byte) (Signal, error) {
	if len(b) > MaxSignalSize {
		return Signal{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxSignalSize)
	}
	if len(b) < 2 {
		return Signal{}, fmt.Errorf("%w: %d bytes, need at least 2", ErrMalformed, len(b))
	}
	if b[0] != SignalVersion {
		return Signal{}, fmt.Errorf("%w: %d", ErrVersion, b[0])
	}
	s := Signal{Kind: SignalKind(b[1])}
	if !s.Kind.valid() {
		return Signal{}, fmt.Errorf("%w: %d", ErrUnknownKind, b[1])
	}
	rest := b[2:]
	var vals [4]string
	names := [4]string{"match id", "sdp", "candidate", "reason"}
	for i := range vals {
		n, w := binary.Uvarint(rest)
		if w <= 0 {
			return Signal{}, fmt.Errorf("%w: %s: bad length", ErrMalformed, names[i])
		}
		if w != uvarintLen(n) {
			return Signal{}, fmt.Errorf("%w: %s: non-minimal length", ErrMalformed, names[i])
		}
		rest = rest[w:]
		if n > uint64(len(rest)) {
			return Signal{}, fmt.Errorf("%w: %s: length %d, only %d bytes left", ErrMalformed, names[i], n, len(rest))
		}
		vals[i] = string(rest[:n])
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return Signal{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rest))
	}
	s.MatchID, s.SDP, s.Candidate, s.Reason = vals[0], vals[1], vals[2], vals[3]
	if err := s.Validate(); err != nil {
		return Signal{}, err
	}
	return s, nil
}

// WriteSignal writes s as one frame: uvarint(len(body)) followed by body =
// s.Marshal(). The frame goes out in a single Write call.
func WriteSignal(w io.Writer, s Signal) error {
	body, err := s.Marshal()
	if err != nil {
		return err
	}
	if err := writeFrame(w, body); err != nil {
		return fmt.Errorf("media: write %s signal: %w", s.Kind, err)
	}
	return nil
}

// writeFrame writes uvarint(len(body)) and body in one Write.
func writeFrame(w io.Writer, body []byte) error {
	frame := make([]byte, 0, binary.MaxVarintLen32+len(body))
	frame = binary.AppendUvarint(frame, uint64(len(body)))
	frame = append(frame, body...)
	_, err := w.Write(frame)
	return err
}

// ReadSignal reads one frame written by WriteSignal and parses it. It reads
// exactly one frame and nothing past it, so the stream can be reused. It
// returns io.EOF, unwrapped, if the stream ends cleanly before a frame; a frame
// cut short gives an error wrapping ErrMalformed and io.ErrUnexpectedEOF. A
// length over MaxSignalSize gives ErrTooLarge before anything is allocated.
func ReadSignal(r io.Reader) (Signal, error) {
	body, err := readFrame(r, MaxSignalSize)
	if err != nil {
		return Signal{}, err
	}
	return ParseSignal(body)
}

// readFrame reads one frame written by writeFrame, refusing a length over
// max (at most MaxSignalSize) with ErrTooLarge before allocating. A stream
// that ends cleanly before the frame gives io.EOF, unwrapped.
func readFrame(r io.Reader, max int) ([]byte, error) {
	n, err := readFrameLen(r)
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, fmt.Errorf("%w: frame of %d bytes, limit %d", ErrTooLarge, n, max)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: frame body: %w", ErrMalformed, err)
	}
	return body, nil
}

// readFrameLen reads a minimal uvarint frame length, one byte at a time so it
// never reads past the prefix.
func readFrameLen(r io.Reader) (int, error) {
	var (
		buf [1]byte
		x   uint64
	)
	// A minimal uvarint of at most MaxSignalSize (2^16) fits in 3 bytes.
	const maxLenBytes = 3
	for i := 0; ; i++ {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			if i == 0 && errors.Is(err, io.EOF) {
				return 0, io.EOF
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("%w: frame length: %w", ErrMalformed, err)
		}
		c := buf[0]
		if i == maxLenBytes-1 && c >= 0x80 {
			return 0, fmt.Errorf("%w: frame length over %d bytes", ErrTooLarge, MaxSignalSize)
		}
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if i > 0 && c == 0 {
				return 0, fmt.Errorf("%w: non-minimal frame length", ErrMalformed)
			}
			break
		}
	}
	switch {
	case x == 0:
		return 0, fmt.Errorf("%w: empty frame", ErrMalformed)
	case x > MaxSignalSize:
		return 0, fmt.Errorf("%w: frame of %d bytes, limit %d", ErrTooLarge, x, MaxSignalSize)
	}
	return int(x), nil
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
