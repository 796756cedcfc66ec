// Package media runs the media side of a Serendip call with Pion WebRTC: one
// PeerConnection per call carrying VP8 video, Opus audio and a "chat" data
// channel; file sources (IVF, Ogg) looped as camera and microphone; sinks that
// count remote media and record it to IVF/Ogg files; and the signalling wire
// format the node carries over its libp2p signal stream.
//
// The package imports no libp2p and no other Serendip package. The node gives
// each Session a Send function (its Signaler) and feeds the partner's signals
// to Session.HandleSignal; Hello and Bye are the node's own business.
//
// # Use
//
//	eng, _ := media.NewEngine(media.DefaultEngineConfig())   // one per node
//	s, _ := eng.NewSession(media.SessionConfig{
//		Role: media.Offerer, Send: sendOverStream,
//		VideoFile: "clip.ivf", AudioFile: "clip.ogg",
//		OnState: onState, OnChat: onChat,
//	})
//	s.Start()                 // offerer: sends the offer
//	... s.HandleSignal(sig)   // for every signal read from the stream
//	s.Close()
//
// # Threading
//
// OnState and OnChat run on one goroutine owned by the session, in order, one
// at a time, with no lock held; they may call any Session method, Close
// included. Send is called from one goroutine at a time, never with a lock
// held: the offer (from Start) or the answer (from HandleSignal) synchronously,
// then the trickled candidates from the session's send loop. Close waits for
// every goroutine the session started.
//
// # Signal wire format, version 1
//
// A signal stream is a sequence of frames. A frame is the body length as an
// unsigned LEB128 varint (encoding/binary Uvarint, minimal encoding, 1 to
// MaxSignalSize = 65536) followed by the body:
//
//	offset  size  field
//	0       1     version, = 1
//	1       1     kind: 1 hello, 2 offer, 3 answer, 4 candidate, 5 bye
//	2       v+n   MatchID:   uvarint length n (<= 64),   then n bytes
//	.       v+n   SDP:       uvarint length n,           then n bytes
//	.       v+n   Candidate: uvarint length n (<= 4096), then n bytes
//	.       v+n   Reason:    uvarint length n (<= 256),  then n bytes
//
// All four fields are always present (empty ones have length 0); nothing may
// follow Reason. Lengths use the minimal varint encoding. Strings are UTF-8.
// Which fields a kind may or must carry is in the Signal documentation;
// Candidate is the JSON of a webrtc.ICECandidateInit, "" meaning end of
// candidates. ParseSignal rejects anything else (ErrVersion, ErrUnknownKind,
// ErrMalformed, ErrTooLarge), and for every body it accepts, Marshal gives the
// same bytes back. A later version would change the version byte; a reader
// refuses versions it does not know rather than guess.
//
// The offerer sends its offer, then its candidates; the answerer sends its
// answer, then its candidates. A session never sends a candidate before its
// own description, and queues remote candidates that arrive before the remote
// description.
//
// # Media
//
// Both sides always negotiate one video and one audio transceiver: send and
// receive when there is a source, receive only when not, so a side without
// files still sees and hears the other. Sources start when the call connects
// and loop their files, each frame paced by the file's own timing. Remote
// tracks are counted (Stats) and, with RecordDir set, written with pion's
// ivfwriter (VP8, 1/90000 timebase, RTP timestamps kept) and oggwriter (Opus).
// Close finalises the recordings, also when the partner vanished, so they are
// always valid files. The receiver asks for a keyframe (PLI) when a video track
// starts and every second until one arrives.
//
// Instead of a Source, a session may send a TrackLocalStaticRTP
// (SessionConfig.VideoRTP, AudioRTP): RTP forwarded from elsewhere with no
// transcoding. OnRTP hands out the partner's RTP packets, OnKeyframeRequest
// the partner's PLI and FIR on our video, and RequestKeyframe sends a PLI to
// the partner: the pieces of the browser bridge and of a mirror.
//
// # Chat channel messages
//
// The "chat" data channel carries text messages (WebRTC string messages),
// each one JSON object (Message) with a "type":
//
//	{"type":"text","text":"hi there"}          a chat line, text <= MaxChatSize bytes of UTF-8
//	{"type":"typing","typing":true}            the sender is (true) or stopped (false) typing
//	{"type":"hello","interests":["music"]}     sent once by each side when the channel opens
//
// A hello carries at most MaxInterests tags of MaxInterestSize bytes. Fields
// not of the message's type are ignored; a message is at most 6*MaxChatSize+256
// bytes. A message that is not a JSON object is a plain chat line (what nodes
// sent before the envelope); an object of an unknown type is dropped, so later
// versions can add types. Binary messages are dropped. ParseMessage and
// Message.Marshal implement this; OnChat gets text, OnMessage hello and typing.
//
// # Browser bridge
//
// A Bridge connects a person's browser to its own node: one PeerConnection
// over loopback per page (Connect answers the page's offer; a new page
// replaces the old connection), with its own SettingEngine (loopback and
// local host candidates, no STUN, no TURN, no mDNS). The page's camera and
// microphone RTP goes into two TrackLocalStaticRTP tracks (Tracks) that every
// call session sends; the current call's RTP (a Feed, swapped on Next with
// NewFeed) goes into two tracks on the page's connection. On a change of
// source (Next, a page reload) the bridge rewrites sequence numbers and
// timestamps so each side sees one continuous stream, starts the new source's
// video at a keyframe (asking for one), and drops the source's header
// extensions. Keyframe requests travel on both ways: the page's PLI/FIR to
// the partner (Feed), the partner's to the page (RequestKeyframe). Only VP8
// and Opus are negotiated, so nothing is ever transcoded.
package media
