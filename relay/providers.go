package relay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"

	lru "github.com/hashicorp/golang-lru/simplelru"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/records"
)

// maxProvidersPerLookup bounds the provider records a relay's DHT returns
// for one key: a random sample of them, new at each lookup. Every node of a
// network advertises the network's rendezvous key, so the full answer grows
// with the network, and building it (a protobuf record with the addresses
// of every provider) is the relay's work: at 1,000 nodes in one process it
// was 14 % of the CPU of the whole run (serendip harness --nodes 1000
// --duration 90s --scenario steady --media data). A node connects to a few
// of those it finds; a sample serves it as well.
const maxProvidersPerLookup = 32

// providerOptions make the DHT keep its provider records in a sampling
// store (providerStore), with no cache in front of it: the provider manager
// caches a key's whole set and answers from it.
func providerOptions() []dht.Option {
	return []dht.Option{
		dht.ProviderDatastore(newProviderStore(maxProvidersPerLookup)),
		dht.ProviderManagerOpts(records.Cache(noCache{})),
	}
}

// providerStore is an in-memory datastore for the DHT's provider records
// (keys records.ProvidersKeyPrefix/<key>/<provider>). A query for one key's
// records returns at most max of them, drawn at random; any other query
// (the provider manager's garbage collection asks for every record)
// returns everything it matches.
type providerStore struct {
	mu   sync.Mutex
	sets map[string]*recordSet // by key: the datastore key up to the last "/"
	max  int
}

// recordSet is one key's records: a slice to draw from, an index to
// update and delete in constant time.
type recordSet struct {
	keys []string
	vals [][]byte
	at   map[string]int
}

func newProviderStore(max int) *providerStore {
	return &providerStore{sets: map[string]*recordSet{}, max: max}
}

// split returns the set name and whether k is a provider record's key.
func split(k ds.Key) (string, bool) {
	s := k.String()
	i := strings.LastIndexByte(s, '/')
	if i <= len(records.ProvidersKeyPrefix) || !strings.HasPrefix(s, records.ProvidersKeyPrefix) {
		return "", false
	}
	return s[:i], true
}

func (p *providerStore) Put(_ context.Context, k ds.Key, v []byte) error {
	set, ok := split(k)
	if !ok {
		return fmt.Errorf("relay: %q is not a provider record", k)
	}
	key := k.String()
	v = append([]byte(nil), v...)
	p.mu.Lock()
	defer p.mu.Unlock()
	rs := p.sets[set]
	if rs == nil {
		rs = &recordSet{at: map[string]int{}}
		p.sets[set] = rs
	}
	if i, ok := rs.at[key]; ok {
		rs.vals[i] = v
		return nil
	}
	rs.at[key] = len(rs.keys)
	rs.keys = append(rs.keys, key)
	rs.vals = append(rs.vals, v)
	return nil
}

func (p *providerStore) Delete(_ context.Context, k ds.Key) error {
	set, ok := split(k)
	if !ok {
		return nil
	}
	key := k.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	rs := p.sets[set]
	if rs == nil {
		return nil
	}
	i, ok := rs.at[key]
	if !ok {
		return nil
	}
	last := len(rs.keys) - 1
	rs.keys[i], rs.vals[i] = rs.keys[last], rs.vals[last]
	rs.at[rs.keys[i]] = i
	rs.keys, rs.vals = rs.keys[:last], rs.vals[:last]
	delete(rs.at, key)
	if len(rs.keys) == 0 {
		delete(p.sets, set)
	}
	return nil
}

func (p *providerStore) Get(_ context.Context, k ds.Key) ([]byte, error) {
	set, ok := split(k)
	if !ok {
		return nil, ds.ErrNotFound
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if rs := p.sets[set]; rs != nil {
		if i, ok := rs.at[k.String()]; ok {
			return append([]byte(nil), rs.vals[i]...), nil
		}
	}
	return nil, ds.ErrNotFound
}

func (p *providerStore) Has(ctx context.Context, k ds.Key) (bool, error) {
	_, err := p.Get(ctx, k)
	if errors.Is(err, ds.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (p *providerStore) GetSize(ctx context.Context, k ds.Key) (int, error) {
	v, err := p.Get(ctx, k)
	if err != nil {
		return -1, err
	}
	return len(v), nil
}

// Query answers a query for one key's records (Prefix names the key) with
// at most max of them at random, and any other with all that match.
func (p *providerStore) Query(_ context.Context, q dsq.Query) (dsq.Results, error) {
	prefix := strings.TrimSuffix(ds.NewKey(q.Prefix).String(), "/")
	var out []dsq.Entry
	add := func(rs *recordSet, i int) {
		e := dsq.Entry{Key: rs.keys[i], Size: len(rs.vals[i])}
		if !q.KeysOnly {
			e.Value = append([]byte(nil), rs.vals[i]...)
		}
		out = append(out, e)
	}
	p.mu.Lock()
	if rs, ok := p.sets[prefix]; ok {
		if n := len(rs.keys); n <= p.max {
			for i := range n {
				add(rs, i)
			}
		} else {
			// max distinct draws: O(max), whatever the set's size
			drawn := make(map[int]bool, p.max)
			for len(drawn) < p.max {
				if i := rand.IntN(n); !drawn[i] {
					drawn[i] = true
					add(rs, i)
				}
			}
		}
	} else {
		for name, rs := range p.sets {
			if name == prefix || strings.HasPrefix(name, prefix+"/") || prefix == "/" {
				for i := range rs.keys {
					add(rs, i)
				}
			}
		}
	}
	p.mu.Unlock()
	// Filters, orders, offset and limit as the query asks (the prefix is
	// already applied).
	rest := q
	rest.Prefix = ""
	return dsq.NaiveQueryApply(rest, dsq.ResultsWithEntries(rest, out)), nil
}

func (p *providerStore) Sync(context.Context, ds.Key) error { return nil }
func (p *providerStore) Close() error                       { return nil }

func (p *providerStore) Batch(context.Context) (ds.Batch, error) {
	return ds.NewBasicBatch(p), nil
}

// noCache is an LRU cache that keeps nothing.
type noCache struct{}

var _ lru.LRUCache = noCache{}

func (noCache) Add(key, value any) bool        { return false }
func (noCache) Get(key any) (any, bool)        { return nil, false }
func (noCache) Contains(key any) bool          { return false }
func (noCache) Peek(key any) (any, bool)       { return nil, false }
func (noCache) Remove(key any) bool            { return false }
func (noCache) RemoveOldest() (any, any, bool) { return nil, nil, false }
func (noCache) GetOldest() (any, any, bool)    { return nil, nil, false }
func (noCache) Keys() []any                    { return nil }
func (noCache) Len() int                       { return 0 }
func (noCache) Purge()                         {}
func (noCache) Resize(int) int                 { return 0 }
