package harness

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/crypto"
	pb "github.com/libp2p/go-libp2p/core/crypto/pb"
)

// The in-process nodes share their Ed25519 signature checks.
//
// Every presence message is signed (GossipSub StrictSign), and every node
// that receives it checks the signature, once per copy that reaches it
// before the first copy's check is done. On the internet each node checks
// on its own CPU; here a thousand nodes check the same message on the same
// two cores, and at 1,000 nodes the checks were a fifth of the whole run's
// CPU (and GossipSub also checks a node's own message as it publishes it).
// A check is a pure function of the key, the data and the signature, so
// the first node to check a message checks it and the others reuse the
// answer: only valid signatures are remembered, keyed by a SHA-256 of all
// three, so a forged or altered message is still checked, and rejected,
// every time. Nothing a node decides changes; the CPU figure of an
// in-process run leaves these checks out, and the report says how many
// were shared.
//
// The cache is installed in this process's libp2p key decoder the first
// time an in-process run starts (before any of its hosts): every Ed25519
// public key the process decodes from then on, the relays' and the
// nodes', shares it. The serendip node and relay commands never install
// it.

// sigCacheSize bounds each of the cache's two generations.
const sigCacheSize = 1 << 16

var (
	sigCacheOnce sync.Once
	sigCache     = &verifiedSigs{cur: map[[32]byte]struct{}{}}
)

// shareSignatureChecks installs the shared cache (once per process).
func shareSignatureChecks() {
	sigCacheOnce.Do(func() {
		decode := crypto.PubKeyUnmarshallers[pb.KeyType_Ed25519]
		crypto.PubKeyUnmarshallers[pb.KeyType_Ed25519] = func(data []byte) (crypto.PubKey, error) {
			k, err := decode(data)
			if err != nil {
				return nil, err
			}
			raw, err := k.Raw()
			if err != nil {
				return nil, err
			}
			return &sharedCheckKey{PubKey: k, raw: raw}, nil
		}
	})
}

// sharedSignatureChecks is how many signature checks the cache answered
// since the process started.
func sharedSignatureChecks() uint64 { return sigCache.hits.Load() }

// verifiedSigs remembers valid (key, data, signature) triples: two
// generations, the older dropped when the newer fills.
type verifiedSigs struct {
	mu       sync.Mutex
	cur, old map[[32]byte]struct{}
	hits     atomic.Uint64
}

func sigKey(raw, data, sig []byte) [32]byte {
	h := sha256.New()
	var n [4]byte
	for _, b := range [][]byte{raw, sig, data} {
		n[0], n[1], n[2], n[3] = byte(len(b)>>24), byte(len(b)>>16), byte(len(b)>>8), byte(len(b))
		h.Write(n[:])
		h.Write(b)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (c *verifiedSigs) known(k [32]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cur[k]; ok {
		return true
	}
	_, ok := c.old[k]
	return ok
}

func (c *verifiedSigs) add(k [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= sigCacheSize {
		c.old, c.cur = c.cur, make(map[[32]byte]struct{}, sigCacheSize)
	}
	c.cur[k] = struct{}{}
}

// sharedCheckKey is an Ed25519 public key whose Verify goes through the
// cache. Everything else is the key's own (Equals compares type and raw
// bytes with any other key).
type sharedCheckKey struct {
	crypto.PubKey
	raw []byte
}

func (k *sharedCheckKey) Verify(data, sig []byte) (bool, error) {
	key := sigKey(k.raw, data, sig)
	if sigCache.known(key) {
		sigCache.hits.Add(1)
		return true, nil
	}
	ok, err := k.PubKey.Verify(data, sig)
	if ok && err == nil {
		sigCache.add(key)
	}
	return ok, err
}

func (k *sharedCheckKey) Equals(o crypto.Key) bool {
	if s, ok := o.(*sharedCheckKey); ok {
		o = s.PubKey
	}
	return k.PubKey.Equals(o)
}
