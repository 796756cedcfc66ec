package relay

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	"github.com/libp2p/go-libp2p/core/peer"
	coretest "github.com/libp2p/go-libp2p/core/test"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"serendip/internal/hosttest"
)

func queryKeys(t *testing.T, p *providerStore, prefix string) map[string]bool {
	t.Helper()
	res, err := p.Query(context.Background(), dsq.Query{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	all, err := res.Rest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range all {
		if out[e.Key] {
			t.Fatalf("query %q returned %s twice", prefix, e.Key)
		}
		out[e.Key] = true
	}
	return out
}

// TestProviderStoreSamples: a query for one key's records returns a random
// sample of at most max, any other query everything it matches.
func TestProviderStoreSamples(t *testing.T) {
	ctx := context.Background()
	p := newProviderStore(8)
	big := records.ProvidersKeyPrefix + "BIG"
	small := records.ProvidersKeyPrefix + "SMALL"
	for i := range 50 {
		if err := p.Put(ctx, ds.NewKey(fmt.Sprintf("%s/P%02d", big, i)), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if err := p.Put(ctx, ds.NewKey(fmt.Sprintf("%s/P%02d", small, i)), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Put(ctx, ds.NewKey("/other/key"), nil); err == nil {
		t.Error("a key that is not a provider record was stored")
	}

	seen := map[string]bool{}
	for range 10 {
		got := queryKeys(t, p, big)
		if len(got) != 8 {
			t.Fatalf("query of a key with 50 records: %d records; want 8", len(got))
		}
		for k := range got {
			if len(k) <= len(big) || k[:len(big)+1] != big+"/" {
				t.Fatalf("query of %s returned %s", big, k)
			}
			seen[k] = true
		}
	}
	if len(seen) <= 8 {
		t.Errorf("10 queries drew the same %d records: not a new sample each time", len(seen))
	}
	if got := queryKeys(t, p, small); len(got) != 3 {
		t.Errorf("query of a key with 3 records: %d; want all 3", len(got))
	}
	if got := queryKeys(t, p, records.ProvidersKeyPrefix); len(got) != 53 {
		t.Errorf("query of every record (garbage collection): %d; want 53", len(got))
	}
	if got := queryKeys(t, p, records.ProvidersKeyPrefix+"BI"); len(got) != 0 {
		t.Errorf("a prefix that is no key's path matched %d records", len(got))
	}

	k := ds.NewKey(small + "/P01")
	if v, err := p.Get(ctx, k); err != nil || len(v) != 1 || v[0] != 1 {
		t.Errorf("Get(%s) = %v, %v", k, v, err)
	}
	if err := p.Put(ctx, k, []byte{7}); err != nil {
		t.Fatal(err)
	}
	if v, _ := p.Get(ctx, k); len(v) != 1 || v[0] != 7 {
		t.Errorf("after a second Put, Get(%s) = %v; want [7]", k, v)
	}
	if err := p.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	if ok, err := p.Has(ctx, k); ok || err != nil {
		t.Errorf("after Delete, Has(%s) = %v, %v", k, ok, err)
	}
	if got := queryKeys(t, p, small); len(got) != 2 || got[k.String()] {
		t.Errorf("after Delete: %v", got)
	}
}

// TestRelayAnswersASample: a relay that holds 100 provider records of a
// rendezvous answers a node's lookup with at most maxProvidersPerLookup of
// them, a different draw each time.
func TestRelayAnswersASample(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rh := hosttest.Loopback(t)
	cfg := DefaultConfig()
	cfg.Network = "providers-test"
	r, err := New(rh, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })

	const ns = "serendip/providers-test"
	h, err := mh.Sum([]byte(ns), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	key := cid.NewCidV1(cid.Raw, h)
	providers := map[peer.ID]bool{}
	for i := range 100 {
		id := coretest.RandPeerIDFatal(t)
		addr := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 20000+i))
		if err := r.dht.ProviderStore().AddProvider(ctx, key.Hash(), peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{addr}}); err != nil {
			t.Fatal(err)
		}
		providers[id] = true
	}

	ch := hosttest.Loopback(t)
	relayInfo := peer.AddrInfo{ID: rh.ID(), Addrs: rh.Addrs()}
	client, err := dht.New(ch, dht.Mode(dht.ModeClient), dht.BootstrapPeers(relayInfo))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if err := ch.Connect(ctx, relayInfo); err != nil {
		t.Fatal(err)
	}
	for client.RoutingTable().Size() == 0 {
		if ctx.Err() != nil {
			t.Fatal("the relay never entered the client's routing table")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rd := drouting.NewRoutingDiscovery(client)
	seen := map[peer.ID]bool{}
	for range 3 {
		found, err := rd.FindPeers(ctx, ns)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for ai := range found {
			if !providers[ai.ID] {
				t.Fatalf("lookup found %s, which no record names", ai.ID)
			}
			seen[ai.ID] = true
			n++
		}
		if n == 0 || n > maxProvidersPerLookup {
			t.Fatalf("lookup found %d of 100 providers; want 1 to %d", n, maxProvidersPerLookup)
		}
	}
	if len(seen) <= maxProvidersPerLookup {
		t.Errorf("3 lookups found the same %d providers: not a new draw each time", len(seen))
	}
}
