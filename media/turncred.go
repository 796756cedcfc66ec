package media

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// TURN credential wire format, version 1: what a relay hands a libp2p peer
// that asks over /serendip/turn/1 (one frame: uvarint length, then body).
//
//	offset  size  field
//	0       1     version, = 1
//	1       8     expiry, unix seconds, big-endian
//	9       v+n   username: uvarint length n (<= 256), then n bytes
//	.       v+n   password: uvarint length n (<= 256), then n bytes
//	.       1     number of URLs (1..8)
//	.       v+n   each URL: uvarint length n (<= 256), then n bytes; stun:, turn: or turns:
//
// Nothing may follow the last URL.
const (
	// TURNProtocol is the libp2p protocol over which a relay hands out TURN
	// credentials: the asking peer opens a stream and reads one frame. Only
	// libp2p peers, whose ids the secure channel proves, ever learn them.
	TURNProtocol = "/serendip/turn/1"

	TURNCredVersion = 1
	// MaxTURNCredSize bounds one credential frame.
	MaxTURNCredSize = 4096
	maxTURNField    = 256
	maxTURNURLs     = 8
)

// TURNCredentials are short-lived credentials for a relay's STUN/TURN server.
type TURNCredentials struct {
	URLs     []string
	Username string
	Password string
	Expires  time.Time // second precision on the wire
}

// ICEServer turns the credentials into Pion's form.
func (c TURNCredentials) ICEServer() webrtc.ICEServer {
	return webrtc.ICEServer{URLs: c.URLs, Username: c.Username, Credential: c.Password}
}

// Validate reports fields a peer must not send.
func (c TURNCredentials) Validate() error {
	if len(c.Username) > maxTURNField || len(c.Password) > maxTURNField {
		return fmt.Errorf("turn credentials: field over %d bytes: %w", maxTURNField, ErrTooLarge)
	}
	if len(c.URLs) == 0 || len(c.URLs) > maxTURNURLs {
		return fmt.Errorf("turn credentials: %d URLs, want 1..%d: %w", len(c.URLs), maxTURNURLs, ErrMalformed)
	}
	for _, u := range c.URLs {
		if len(u) > maxTURNField {
			return fmt.Errorf("turn credentials: URL over %d bytes: %w", maxTURNField, ErrTooLarge)
		}
		if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
			return fmt.Errorf("turn credentials: URL %q is not stun:, turn: or turns:: %w", u, ErrMalformed)
		}
	}
	return nil
}

// Marshal encodes c.
func (c TURNCredentials) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b := []byte{TURNCredVersion}
	b = binary.BigEndian.AppendUint64(b, uint64(c.Expires.Unix()))
	b = appendString(b, c.Username)
	b = appendString(b, c.Password)
	b = append(b, byte(len(c.URLs)))
	for _, u := range c.URLs {
		b = appendString(b, u)
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// ParseTURNCredentials decodes a frame body, strictly.
func ParseTURNCredentials(b []byte) (TURNCredentials, error) {
	var c TURNCredentials
	if len(b) > MaxTURNCredSize {
		return c, fmt.Errorf("turn credentials: %d bytes: %w", len(b), ErrTooLarge)
	}
	if len(b) < 10 {
		return c, fmt.Errorf("turn credentials: %d bytes: %w", len(b), ErrMalformed)
	}
	if b[0] != TURNCredVersion {
		return c, fmt.Errorf("turn credentials: version %d: %w", b[0], ErrVersion)
	}
	exp := binary.BigEndian.Uint64(b[1:9])
	if exp > 1<<40 {
		return c, fmt.Errorf("turn credentials: expiry out of range: %w", ErrMalformed)
	}
	c.Expires = time.Unix(int64(exp), 0)
	rest := b[9:]
	field := func() (string, error) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > maxTURNField || uint64(len(rest)-k) < n || k != uvarintLen(n) {
			return "", fmt.Errorf("turn credentials: bad field: %w", ErrMalformed)
		}
		s := string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
		return s, nil
	}
	var err error
	if c.Username, err = field(); err != nil {
		return TURNCredentials{}, err
	}
	if c.Password, err = field(); err != nil {
		return TURNCredentials{}, err
	}
	if len(rest) < 1 {
		return TURNCredentials{}, fmt.Errorf("turn credentials: no URL count: %w", ErrMalformed)
	}
	count := int(rest[0])
	rest = rest[1:]
	if count == 0 || count > maxTURNURLs {
		return TURNCredentials{}, fmt.Errorf("turn credentials: %d URLs: %w", count, ErrMalformed)
	}
	for range count {
		u, err := field()
		if err != nil {
			return TURNCredentials{}, err
		}
		c.URLs = append(c.URLs, u)
	}
	if len(rest) != 0 {
		return TURNCredentials{}, fmt.Errorf("turn credentials: %d trailing bytes: %w", len(rest), ErrMalformed)
	}
	if err := c.Validate(); err != nil {
		return TURNCredentials{}, err
	}
	return c, nil
}

// WriteTURNCredentials writes c as one frame: uvarint length, then body.
func WriteTURNCredentials(w io.Writer, c TURNCredentials) error {
	body, err := c.Marshal()
	if err != nil {
		return err
	}
	return writeFrame(w, body)
}

// ReadTURNCredentials reads one frame written by WriteTURNCredentials,
// refusing a length over MaxTURNCredSize before allocating.
func ReadTURNCredentials(r io.Reader) (TURNCredentials, error) {
	body, err := readFrame(r, MaxTURNCredSize)
	if err != nil {
		return TURNCredentials{}, fmt.Errorf("turn credentials: %w", err)
	}
	return ParseTURNCredentials(body)
}
