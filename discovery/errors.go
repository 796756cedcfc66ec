package discovery

import "errors"

// Sentinel errors. Functions wrap them with context (fmt.Errorf("...: %w",
// ...)); test with errors.Is.
var (
	// ErrVersion: a wire message starts with a version byte this package does
	// not speak.
	ErrVersion = errors.New("discovery: unsupported version")

	// ErrMalformed: bytes that are not a valid encoding (truncated, trailing
	// bytes, unknown flags or kinds, an empty or non-canonical field), or a
	// value that cannot be encoded (an interest that is not lower-case, a
	// duplicate tag, an unknown verdict).
	ErrMalformed = errors.New("discovery: malformed message")

	// ErrTooLarge: a message, frame, count or field over its size limit. Read
	// functions report it before allocating.
	ErrTooLarge = errors.New("discovery: message too large")

	// ErrExpired: a presence whose expiry is not after now.
	ErrExpired = errors.New("discovery: presence expired")

	// ErrExpiresTooFar: a presence whose expiry lies further in the future
	// than the allowed TTL (a replay-friendly or clock-broken sender).
	ErrExpiresTooFar = errors.New("discovery: presence expires too far in the future")

	// ErrConfig: Config.Validate found a bad value or relation.
	ErrConfig = errors.New("discovery: invalid config")

	// ErrInvalidPeer: an empty PeerID where a peer is required.
	ErrInvalidPeer = errors.New("discovery: invalid peer id")

	// ErrNilRand: NewMatcher was given no random source.
	ErrNilRand = errors.New("discovery: nil random source")
)
