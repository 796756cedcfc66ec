package node_test

import (
	"testing"
	"time"

	"serendip/node"
)

// TestDeafSearchStaysHome: a searching node that nobody else is on its
// shard's topic with (it cannot hear its shard yet) does not climb to the
// ancestors: at a thousand nodes starting at once, such nodes climbed to
// the root and announced on every level, and the machine drowned in
// presence.
func TestDeafSearchStaysHome(t *testing.T) {
	if testing.Short() {
		t.Skip("real libp2p hosts; skipped in -short")
	}
	nw := newNetwork(t)
	n, _ := nw.botWith(time.Second, func(c *node.Config) { c.StartShardLevel = 3 })
	lonely := node.LocalConfig().LonelyWait
	waitFor(t, 10*time.Second, "the node to search", func() bool { return state(t, n).State == "searching" })
	for end := time.Now().Add(5 * lonely); time.Now().Before(end); time.Sleep(lonely / 4) {
		if st := state(t, n); st.ShardTopics != 1 {
			t.Fatalf("alone on its shard (%s), the node joined %d presence topics; want 1", st.Shard, st.ShardTopics)
		}
	}
}
