package media

import (
	"sync"
	"sync/atomic"
)

// maxQueuedChats bounds chat messages waiting for a slow OnChat; more are
// dropped (and logged) so a partner cannot grow the queue without limit.
const maxQueuedChats = 256

type event struct {
	chat  bool
	state State
	text  string
	msg   *Message // a typing or hello message (chat is true too)
}

// notifier runs a session's callbacks on one goroutine it owns, in order, one at
// a time, with no session lock held. State events are never dropped; chat
// events are bounded by maxQueuedChats. After finish, it delivers what is
// queued, then the final state, then exits and closes done.
type notifier struct {
	onState   func(State)
	onChat    func(string)
	onMessage func(Message) // set before run, never changed

	mu     sync.Mutex
	queue  []event
	chats  int
	final  bool
	wake   chan struct{}
	done   chan struct{}
	inCall atomic.Bool
}

func newNotifier(onState func(State), onChat func(string)) *notifier {
	return &notifier{
		onState: onState,
		onChat:  onChat,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
}

// pushState queues a state change. It never blocks.
func (n *notifier) pushState(st State) {
	n.push(event{state: st})
}

// pushChat queues a chat message. It never blocks; it reports false if the
// message was dropped because the queue is full or the session is closing.
func (n *notifier) pushChat(text string) bool {
	return n.push(event{chat: true, text: text})
}

func (n *notifier) push(ev event) bool {
	n.mu.Lock()
	if n.final || (ev.chat && n.chats >= maxQueuedChats) {
		n.mu.Unlock()
		return false
	}
	n.queue = append(n.queue, ev)
	if ev.chat {
		n.chats++
	}
	n.mu.Unlock()
	n.poke()
	return true
}

// pushMessage queues a typing or hello message; it shares the chat bound.
func (n *notifier) pushMessage(m Message) bool {
	return n.push(event{chat: true, msg: &m})
}

// finish queues the last event; the goroutine exits after delivering it.
func (n *notifier) finish(st State) {
	n.mu.Lock()
	if !n.final {
		n.queue = append(n.queue, event{state: st})
		n.final = true
	}
	n.mu.Unlock()
	n.poke()
}

func (n *notifier) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) run() {
	defer close(n.done)
	for range n.wake {
		for {
			n.mu.Lock()
			if len(n.queue) == 0 {
				final := n.final
				n.mu.Unlock()
				if final {
					return
				}
				break
			}
			ev := n.queue[0]
			n.queue[0] = event{}
			n.queue = n.queue[1:]
			if ev.chat {
				n.chats--
			}
			n.mu.Unlock()
			n.deliver(ev)
		}
	}
}

func (n *notifier) deliver(ev event) {
	n.inCall.Store(true)
	defer n.inCall.Store(false)
	switch {
	case ev.msg != nil:
		if n.onMessage != nil {
			n.onMessage(*ev.msg)
		}
	case ev.chat && n.onChat != nil:
		n.onChat(ev.text)
	case !ev.chat && n.onState != nil:
		n.onState(ev.state)
	}
}

// wait waits for the callback goroutine to exit, unless a callback is running
// right now (perhaps the caller itself): waiting then could deadlock.
func (n *notifier) wait() {
	if n.inCall.Load() {
		return
	}
	<-n.done
}
