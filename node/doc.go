// Package node is a Serendip node: it composes a libp2p host with the DHT,
// GossipSub presence, the matcher from package discovery and the calls from
// package media, and serves the JSON API and the web UI (package web) on
// localhost. A node without media files takes its camera and microphone from
// the page through a media.Bridge, and sends each stranger's media back to
// the page; the page's events (state, chat, typing, the reason a call ended)
// come over Server-Sent Events (web.go).
//
// One goroutine, the loop, owns the matcher and the current call. Everything
// else (stream handlers, pubsub, media callbacks, the HTTP API) hands work to
// the loop as closures and never touches that state directly.
//
// # Signal protocol /serendip/signal/1
//
// After a match the offerer (the peer whose claim was accepted) opens one
// stream to the answerer. Both directions carry media.Signal frames (see
// package media for the layout). The first frame from the offerer is a Hello
// carrying the match id; the answerer accepts the stream only if it is matched
// to that peer under that id, and resets it otherwise. Then come the offer,
// the answer and trickled candidates in both directions, and finally a Bye
// with a reason from whichever side ends the call. A stream that ends or is
// reset without a Bye means the partner vanished.
package node
