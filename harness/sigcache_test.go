package harness

import (
	"crypto/rand"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The shared checks answer a repeated valid check from the cache, and
// still reject a forged signature or altered data every time.
func TestSharedSignatureChecks(t *testing.T) {
	shareSignatureChecks()
	priv, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	// Decoded the way GossipSub decodes a message's author.
	k, err := id.ExtractPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := k.(*sharedCheckKey); !ok {
		t.Fatalf("decoded key is %T, not the shared-check key", k)
	}
	if !k.Equals(pub) || !pub.Equals(k) {
		t.Fatal("shared-check key does not equal its own key")
	}
	data := []byte("presence")
	sig, err := priv.Sign(data)
	if err != nil {
		t.Fatal(err)
	}
	before := sharedSignatureChecks()
	for i := range 3 {
		if ok, err := k.Verify(data, sig); !ok || err != nil {
			t.Fatalf("check %d of a valid signature: %v, %v", i, ok, err)
		}
	}
	if got := sharedSignatureChecks() - before; got != 2 {
		t.Errorf("%d checks shared; want 2 (the first computes)", got)
	}
	for i := range 2 {
		if ok, _ := k.Verify([]byte("presencf"), sig); ok {
			t.Fatalf("check %d: altered data passed", i)
		}
		bad := append([]byte(nil), sig...)
		bad[0] ^= 1
		if ok, _ := k.Verify(data, bad); ok {
			t.Fatalf("check %d: altered signature passed", i)
		}
	}
	_, other, _ := crypto.GenerateEd25519Key(rand.Reader)
	oid, _ := peer.IDFromPublicKey(other)
	ko, err := oid.ExtractPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := ko.Verify(data, sig); ok {
		t.Fatal("another key's check passed with this key's signature")
	}
}
