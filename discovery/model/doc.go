// Package model holds a model of the claim protocol of package discovery,
// claim.pml, for the Spin model checker, and the test that checks it: three
// nodes claiming each other over channels that reorder (and, in the LOSSY
// variant, lose) messages, with every timer free to fire at any moment.
// Spin explores every interleaving and proves that no two nodes disagree
// on a match (partner, match id, roles) and that the protocol cannot
// deadlock (no node is left claiming or holding a claim when nothing else
// can happen). The test needs spin and a C compiler (Debian: apt-get install
// spin gcc) and skips, saying so, without them.
package model
