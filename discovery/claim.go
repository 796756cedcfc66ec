package discovery

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// Claim protocol limits. See doc.go for the byte layouts.
const (
	ClaimVersion  = 1  // first byte of every claim and reply message
	MaxClaimFrame = 64 // largest frame payload a reader of the claim stream accepts
	MaxFrame      = 0xFFFF

	kindClaim = 1
	kindReply = 2

	claimLen = 1 + 1 + 16 + 8 // version, kind, id, ticket
	replyLen = 1 + 1 + 16 + 1 // version, kind, id, verdict
)

// MatchID names one claim, and so the match and call it may become.
type MatchID [16]byte

// String returns the id as 32 lower-case hex digits.
func (id MatchID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is all zero bytes.
func (id MatchID) IsZero() bool { return id == MatchID{} }

// ParseMatchID parses the form String returns.
func ParseMatchID(s string) (MatchID, error) {
	var id MatchID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("match id %q: want %d hex digits: %w", s, 2*len(id), ErrMalformed)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return MatchID{}, fmt.Errorf("match id %q: %w", s, ErrMalformed)
	}
	return id, nil
}

// Claim asks the target to match with the claimer. Both fields are random.
type Claim struct {
	ID     MatchID
	Ticket uint64
}

// Less orders claims by (Ticket, ID bytes). The smaller claim is the older
// one in wait-die and the winner of a crossing.
func (c Claim) Less(o Claim) bool {
	if c.Ticket != o.Ticket {
		return c.Ticket < o.Ticket
	}
	return bytes.Compare(c.ID[:], o.ID[:]) < 0
}

// Marshal encodes c. It never fails; the error is there for symmetry with the
// other messages.
func (c Claim) Marshal() ([]byte, error) {
	b := make([]byte, 0, claimLen)
	b = append(b, ClaimVersion, kindClaim)
	b = append(b, c.ID[:]...)
	return binary.BigEndian.AppendUint64(b, c.Ticket), nil
}

// ParseClaim decodes a claim message strictly.
func ParseClaim(b []byte) (Claim, error) {
	var c Claim
	if err := checkHeader(b, kindClaim, claimLen); err != nil {
		return c, fmt.Errorf("claim: %w", err)
	}
	copy(c.ID[:], b[2:18])
	c.Ticket = binary.BigEndian.Uint64(b[18:])
	return c, nil
}

// Verdict is a target's answer to a claim.
type Verdict uint8

// Verdicts. Zero is not a verdict.
const (
	Accept             Verdict = 1 + iota // a match: the claimer is the offerer
	RefuseBusy                            // matched, or claiming and the claim is younger, or another claim already waits
	RefuseCrossing                        // we crossed; my claim wins, expect it
	RefuseBlocked                         // the target blocked the claimer
	RefuseNotSearching                    // the target is idle
	RefuseTimeout                         // the claim waited HoldTimeout without an answer
)

var verdictNames = [...]string{
	Accept:             "accept",
	RefuseBusy:         "busy",
	RefuseCrossing:     "crossing",
	RefuseBlocked:      "blocked",
	RefuseNotSearching: "not-searching",
	RefuseTimeout:      "timeout",
}

// Valid reports whether v is one of the verdicts above.
func (v Verdict) Valid() bool { return v >= Accept && v <= RefuseTimeout }

func (v Verdict) String() string {
	if v.Valid() {
		return verdictNames[v]
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// Reply answers the claim with the same ID.
type Reply struct {
	ID      MatchID
	Verdict Verdict
}

// Marshal encodes r. It fails with ErrMalformed for an invalid verdict.
func (r Reply) Marshal() ([]byte, error) {
	if !r.Verdict.Valid() {
		return nil, fmt.Errorf("reply: %v: %w", r.Verdict, ErrMalformed)
	}
	b := make([]byte, 0, replyLen)
	b = append(b, ClaimVersion, kindReply)
	b = append(b, r.ID[:]...)
	return append(b, byte(r.Verdict)), nil
}

// ParseReply decodes a reply message strictly.
func ParseReply(b []byte) (Reply, error) {
	var r Reply
	if err := checkHeader(b, kindReply, replyLen); err != nil {
		return r, fmt.Errorf("reply: %w", err)
	}
	copy(r.ID[:], b[2:18])
	r.Verdict = Verdict(b[18])
	if !r.Verdict.Valid() {
		return Reply{}, fmt.Errorf("reply: %v: %w", r.Verdict, ErrMalformed)
	}
	return r, nil
}

func checkHeader(b []byte, kind byte, size int) error {
	switch {
	case len(b) > MaxClaimFrame:
		return fmt.Errorf("%d bytes over %d: %w", len(b), MaxClaimFrame, ErrTooLarge)
	case len(b) == 0:
		return fmt.Errorf("empty: %w", ErrMalformed)
	case b[0] != ClaimVersion:
		return fmt.Errorf("version %d: %w", b[0], ErrVersion)
	case len(b) < 2:
		return fmt.Errorf("truncated: %w", ErrMalformed)
	case b[1] != kind:
		return fmt.Errorf("kind %d, want %d: %w", b[1], kind, ErrMalformed)
	case len(b) != size:
		return fmt.Errorf("%d bytes, want %d: %w", len(b), size, ErrMalformed)
	}
	return nil
}

// WriteFrame writes b with a 2-byte big-endian length prefix, in one Write.
// Empty payloads and payloads over MaxFrame are refused.
func WriteFrame(w io.Writer, b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("frame: empty payload: %w", ErrMalformed)
	}
	if len(b) > MaxFrame {
		return fmt.Errorf("frame of %d bytes over %d: %w", len(b), MaxFrame, ErrTooLarge)
	}
	buf := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(buf, uint16(len(b)))
	copy(buf[2:], b)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame written by WriteFrame. It refuses a length over
// max with ErrTooLarge before allocating, and a zero length or a frame cut
// short with ErrMalformed. A stream closed before the first byte returns
// io.EOF; other read errors (deadlines, resets) are returned as they are.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("frame: truncated length: %w", ErrMalformed)
		}
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n > max {
		return nil, fmt.Errorf("frame of %d bytes over %d: %w", n, max, ErrTooLarge)
	}
	if n == 0 {
		return nil, fmt.Errorf("frame: empty: %w", ErrMalformed)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("frame: truncated payload: %w", ErrMalformed)
		}
		return nil, err
	}
	return b, nil
}

// WriteClaim writes c as one frame.
func WriteClaim(w io.Writer, c Claim) error {
	b, _ := c.Marshal()
	return WriteFrame(w, b)
}

// ReadClaim reads one claim frame.
func ReadClaim(r io.Reader) (Claim, error) {
	b, err := ReadFrame(r, MaxClaimFrame)
	if err != nil {
		return Claim{}, err
	}
	return ParseClaim(b)
}

// WriteReply writes rep as one frame.
func WriteReply(w io.Writer, rep Reply) error {
	b, err := rep.Marshal()
	if err != nil {
		return err
	}
	return WriteFrame(w, b)
}

// ReadReply reads one reply frame and checks that it answers want.
func ReadReply(r io.Reader, want MatchID) (Reply, error) {
	b, err := ReadFrame(r, MaxClaimFrame)
	if err != nil {
		return Reply{}, err
	}
	rep, err := ParseReply(b)
	if err != nil {
		return Reply{}, err
	}
	if rep.ID != want {
		return Reply{}, fmt.Errorf("reply for %v, want %v: %w", rep.ID, want, ErrMalformed)
	}
	return rep, nil
}
