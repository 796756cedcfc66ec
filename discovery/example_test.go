package discovery_test

import (
	"fmt"
	"math/rand/v2"
	"time"

	"serendip/discovery"
)

// Two matchers wired back to back: what a node does with the actions, with
// the network replaced by direct calls.
func Example() {
	now := time.Unix(1_700_000_000, 0)
	cfg := discovery.LocalConfig()
	alice, _ := discovery.NewMatcher("alice", cfg, rand.New(rand.NewPCG(1, 1)))
	bob, _ := discovery.NewMatcher("bob", cfg, rand.New(rand.NewPCG(2, 2)))
	nodes := map[discovery.PeerID]*discovery.Matcher{"alice": alice, "bob": bob}
	order := []discovery.PeerID{"alice", "bob"}

	// deliver carries out the actions of node from, recursively.
	var deliver func(from discovery.PeerID, acts []discovery.Action)
	deliver = func(from discovery.PeerID, acts []discovery.Action) {
		for _, a := range acts {
			switch a := a.(type) {
			case discovery.Announce: // publish on the presence topic
				for _, id := range order {
					if id != from {
						deliver(id, nodes[id].Step(now, a.Presence(1, nil).Seen(from)))
					}
				}
			case discovery.SendClaim: // open a claim stream
				deliver(a.To, nodes[a.To].Step(now, discovery.ClaimReceived{From: from, Claim: a.Claim}))
			case discovery.SendReply: // answer on it
				deliver(a.To, nodes[a.To].Step(now, discovery.ReplyReceived{From: from, Reply: a.Reply}))
			case discovery.Matched: // start the call
				fmt.Printf("%s: matched with %s, offerer %v\n", from, a.Peer, a.Offerer)
			}
		}
	}
	deliver("alice", alice.Step(now, discovery.Start{}))
	deliver("bob", bob.Step(now, discovery.Start{}))
	// Nobody claims at once (jitter): tick each node at its NextWake.
	for alice.Status().State != discovery.StateMatched {
		now = now.Add(10 * time.Millisecond)
		for _, id := range order {
			if w := nodes[id].Status().NextWake; !w.IsZero() && !w.After(now) {
				deliver(id, nodes[id].Step(now, discovery.Tick{}))
			}
		}
	}
	fmt.Println(alice.Status().MatchID == bob.Status().MatchID)
	// Output:
	// bob: matched with alice, offerer true
	// alice: matched with bob, offerer false
	// true
}
