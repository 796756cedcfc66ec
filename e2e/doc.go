// Package e2e holds whole-system tests that run the serendip binary on
// real networks built in Linux network namespaces (natlab.sh): NAT routers
// with nftables masquerade between the nodes and a relay. They need root,
// iproute2 and nftables, and skip with a message saying which is missing.
package e2e
