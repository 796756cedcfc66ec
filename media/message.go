package media

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// MessageKind names what a message on the chat data channel carries.
type MessageKind string

// Message kinds.
const (
	// MessageText is a chat line typed by the partner.
	MessageText MessageKind = "text"
	// MessageTyping says whether the partner is typing right now.
	MessageTyping MessageKind = "typing"
	// MessageHello is sent once by each side when the channel opens; it
	// carries the sender's interest tags.
	MessageHello MessageKind = "hello"
)

// Limits on a message's fields.
const (
	// MaxInterests bounds the interest tags in a hello; MaxInterestSize one
	// tag, in bytes.
	MaxInterests    = 16
	MaxInterestSize = 64
	// maxMessageWire bounds one message on the channel, in bytes: the longest
	// chat text with every byte escaped, plus the envelope.
	maxMessageWire = 6*MaxChatSize + 256
)

// Message is one message on the chat data channel. On the wire it is a JSON
// object sent as a text (string) message; see the package doc.
type Message struct {
	Kind      MessageKind `json:"type"`
	Text      string      `json:"text,omitempty"`
	Typing    bool        `json:"typing,omitempty"`
	Interests []string    `json:"interests,omitempty"`
}

// Validate checks a message's kind and limits. Errors wrap ErrUnknownKind,
// ErrChatTooLong, ErrTooLarge or ErrMalformed.
func (m Message) Validate() error {
	switch m.Kind {
	case MessageText:
		if len(m.Text) > MaxChatSize {
			return fmt.Errorf("%w: %d bytes, limit %d", ErrChatTooLong, len(m.Text), MaxChatSize)
		}
		if !utf8.ValidString(m.Text) {
			return fmt.Errorf("%w: chat text is not UTF-8", ErrMalformed)
		}
	case MessageTyping:
	case MessageHello:
		if len(m.Interests) > MaxInterests {
			return fmt.Errorf("%w: %d interests, limit %d", ErrTooLarge, len(m.Interests), MaxInterests)
		}
		for _, in := range m.Interests {
			if len(in) > MaxInterestSize || !utf8.ValidString(in) {
				return fmt.Errorf("%w: bad interest %q", ErrMalformed, in)
			}
		}
	default:
		return fmt.Errorf("%w: message type %q", ErrUnknownKind, m.Kind)
	}
	return nil
}

// Marshal encodes a valid message for the wire.
func (m Message) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(m.canonical())
}

// canonical keeps only the fields of the message's kind.
func (m Message) canonical() Message {
	out := Message{Kind: m.Kind}
	switch m.Kind {
	case MessageText:
		out.Text = m.Text
	case MessageTyping:
		out.Typing = m.Typing
	case MessageHello:
		if len(m.Interests) > 0 {
			out.Interests = m.Interests
		}
	}
	return out
}

// ParseMessage decodes one message from the chat channel. Text that is not a
// JSON object is taken as a plain chat line (what nodes sent before the
// envelope). Errors wrap ErrTooLarge, ErrMalformed, ErrUnknownKind (a type
// this version does not know: drop it) or ErrChatTooLong.
func ParseMessage(b []byte) (Message, error) {
	if len(b) > maxMessageWire {
		return Message{}, fmt.Errorf("%w: message of %d bytes", ErrTooLarge, len(b))
	}
	if !utf8.Valid(b) {
		return Message{}, fmt.Errorf("%w: message is not UTF-8", ErrMalformed)
	}
	if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '{' {
		m := Message{Kind: MessageText, Text: string(b)}
		return m, m.Validate()
	}
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		m = Message{Kind: MessageText, Text: string(b)}
		return m, m.Validate()
	}
	if err := m.Validate(); err != nil {
		return Message{}, err
	}
	return m.canonical(), nil
}
