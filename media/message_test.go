package media

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseMessage(t *testing.T) {
	cases := []struct {
		in   string
		want Message
		err  error
	}{
		{`{"type":"text","text":"hi"}`, Message{Kind: MessageText, Text: "hi"}, nil},
		{`{"type":"typing","typing":true}`, Message{Kind: MessageTyping, Typing: true}, nil},
		{`{"type":"typing"}`, Message{Kind: MessageTyping}, nil},
		{`{"type":"hello","interests":["music","go"]}`, Message{Kind: MessageHello, Interests: []string{"music", "go"}}, nil},
		{`{"type":"hello","interests":[]}`, Message{Kind: MessageHello}, nil},
		{`{"type":"typing","typing":true,"text":"extra"}`, Message{Kind: MessageTyping, Typing: true}, nil},
		{`plain words from an older node`, Message{Kind: MessageText, Text: "plain words from an older node"}, nil},
		{`{not json at all`, Message{Kind: MessageText, Text: "{not json at all"}, nil},
		{`{"type":"video-call-me-maybe"}`, Message{}, ErrUnknownKind},
		{`{"type":"hello","interests":["` + strings.Repeat("x", MaxInterestSize+1) + `"]}`, Message{}, ErrMalformed},
		{`{"type":"hello","interests":[` + strings.Repeat(`"a",`, MaxInterests) + `"b"]}`, Message{}, ErrTooLarge},
		{`{"type":"text","text":"` + strings.Repeat("x", MaxChatSize+1) + `"}`, Message{}, ErrChatTooLong},
		{strings.Repeat("x", MaxChatSize+1), Message{}, ErrChatTooLong},
		{strings.Repeat("x", maxMessageWire+1), Message{}, ErrTooLarge},
		{"\xff\xfe", Message{}, ErrMalformed},
	}
	for _, c := range cases {
		got, err := ParseMessage([]byte(c.in))
		name := c.in
		if len(name) > 40 {
			name = name[:40] + "..."
		}
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%q: error %v, want %v", name, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %+v, %v; want %+v", name, got, err, c.want)
		}
	}
	if _, err := (Message{Kind: "nope"}).Marshal(); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("Marshal of an unknown kind: %v", err)
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, m := range []Message{
		{Kind: MessageText, Text: "hello \"stranger\" \u2603"},
		{Kind: MessageTyping, Typing: true},
		{Kind: MessageHello, Interests: []string{"music", "films"}},
	} {
		b, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("just text"))
	f.Add([]byte(`{"type":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("parsed %+v but Marshal fails: %v", m, err)
		}
		again, err := ParseMessage(out)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("Parse(Marshal(m)) = %+v, %v; want %+v", again, err, m)
		}
	})
}

// TestTypingAndHello: each side's hello arrives with its interests when the
// channel opens, and typing indicators travel next to chat.
func TestTypingAndHello(t *testing.T) {
	eng := newTestEngine(t, nil)
	msgs := map[string]chan Message{"A": make(chan Message, 8), "B": make(chan Message, 8)}
	a, b := startCall(t, eng, eng,
		SessionConfig{Interests: []string{"music"}, OnMessage: func(m Message) { msgs["A"] <- m }},
		SessionConfig{Interests: []string{"music", "chess"}, OnMessage: func(m Message) { msgs["B"] <- m }})
	expect := func(who string, want Message) {
		t.Helper()
		select {
		case got := <-msgs[who]:
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s got %+v, want %+v", who, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no message, want %+v", who, want)
		}
	}
	expect("A", Message{Kind: MessageHello, Interests: []string{"music", "chess"}})
	expect("B", Message{Kind: MessageHello, Interests: []string{"music"}})
	if err := a.s.SendTyping(true); err != nil {
		t.Fatal(err)
	}
	expect("B", Message{Kind: MessageTyping, Typing: true})
	chatUntilOpen(t, a, `{"type":"typing","typing":true}`) // text that looks like an envelope stays text
	expectChat(t, b, `{"type":"typing","typing":true}`)
	if err := a.s.SendTyping(false); err != nil {
		t.Fatal(err)
	}
	expect("B", Message{Kind: MessageTyping})
	if err := b.s.SendChat(strings.Repeat("x", MaxChatSize+1)); !errors.Is(err, ErrChatTooLong) {
		t.Errorf("long chat: %v", err)
	}
	a.shutdown()
	b.shutdown()
	checkNoLeaks(t, a.s, b.s)
}
