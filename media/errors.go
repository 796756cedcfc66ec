package media

import "errors"

// Sentinel errors. Functions wrap them with context (fmt.Errorf("...: %w", err)),
// so test for them with errors.Is.
var (
	// ErrMalformed: a signal frame does not follow the wire format (bad length,
	// truncated field, non-minimal varint, invalid UTF-8, trailing bytes, a field
	// not allowed for its kind, bad candidate JSON), or a chat message is not
	// valid UTF-8.
	ErrMalformed = errors.New("media: malformed input")

	// ErrTooLarge: a signal frame or one of its fields is over its limit
	// (MaxSignalSize, MaxMatchIDSize, MaxCandidateSize, MaxReasonSize). ReadSignal
	// returns it before allocating the frame.
	ErrTooLarge = errors.New("media: signal too large")

	// ErrVersion: a signal uses a wire version this package does not speak.
	ErrVersion = errors.New("media: unsupported signal version")

	// ErrUnknownKind: a signal has a kind this package does not know.
	ErrUnknownKind = errors.New("media: unknown signal kind")

	// ErrUnexpectedSignal: a well-formed signal arrived at the wrong time for this
	// session (an offer at the offerer, an answer before any offer, a second offer).
	ErrUnexpectedSignal = errors.New("media: unexpected signal")

	// ErrBadConfig: an EngineConfig or SessionConfig is invalid.
	ErrBadConfig = errors.New("media: bad config")

	// ErrBadMedia: a video or audio file is missing, unreadable or not in the
	// expected format (IVF VP8, Ogg Opus).
	ErrBadMedia = errors.New("media: bad media file")

	// ErrNotConnected: the chat data channel is not open (yet, or any more).
	ErrNotConnected = errors.New("media: not connected")

	// ErrChatTooLong: a chat message is longer than MaxChatSize.
	ErrChatTooLong = errors.New("media: chat message too long")

	// ErrAlreadyStarted: Start was called twice.
	ErrAlreadyStarted = errors.New("media: session already started")

	// ErrCloseTimeout: Close gave up waiting for the peer connection to
	// close; the session is closed for the caller all the same.
	ErrCloseTimeout = errors.New("media: peer connection still closing")
	// ErrClosed: the session has been closed.
	ErrClosed = errors.New("media: session closed")
)
