// Package web is the page a person uses Serendip through: plain HTML, CSS
// and JavaScript with no build step, embedded in the binary and served by the
// node on localhost (a secure context, so the camera works without TLS).
//
// The page talks only to its own node: JSON calls and Server-Sent Events on
// /api/ (see package node), and one WebRTC connection over loopback that
// carries its camera and microphone to the node and the stranger's video and
// sound back (the node's bridge). It never talks to the stranger directly.
//
// Elements tests and scripts can rely on: start, next, stop, status,
// local-video, remote-video, chat-log, chat-input, chat-send, interests,
// block. window.serendip exposes the page's state and timings.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var files embed.FS

// FS is the page's files: index.html, app.js, style.css and the icon.
func FS() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	return sub
}
