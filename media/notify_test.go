package media

import (
	"fmt"
	"testing"
	"time"
)

func TestNotifierOrderAndBound(t *testing.T) {
	release := make(chan struct{})
	var got []string
	n := newNotifier(
		func(st State) { got = append(got, st.String()) },
		func(text string) {
			<-release // a slow OnChat
			got = append(got, text)
		},
	)
	go n.run()

	n.pushState(StateConnecting)
	var accepted []string
	for i := range maxQueuedChats + 50 {
		if text := fmt.Sprint(i); n.pushChat(text) {
			accepted = append(accepted, text)
		}
	}
	// One chat may already be in the callback, so at most one more than the bound.
	if len(accepted) < maxQueuedChats || len(accepted) > maxQueuedChats+1 {
		t.Fatalf("accepted %d chats, bound is %d", len(accepted), maxQueuedChats)
	}
	n.pushState(StateConnected) // states are never dropped
	n.finish(StateClosed)
	if n.pushChat("late") {
		t.Fatal("chat accepted after finish")
	}
	close(release)
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
		t.Fatal("notifier did not finish")
	}
	if len(got) != len(accepted)+3 || got[0] != "connecting" || got[len(got)-2] != "connected" || got[len(got)-1] != "closed" {
		t.Fatalf("delivered %d events: first %q, last %q", len(got), got[0], got[len(got)-1])
	}
	for i, want := range accepted {
		if got[1+i] != want {
			t.Fatalf("chat %d delivered as %q, want %q: out of order", i, got[1+i], want)
		}
	}
}
