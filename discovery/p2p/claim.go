package p2p

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	msmux "github.com/multiformats/go-multistream"

	"serendip/discovery"
	"serendip/internal/limit"
)

// claimReadTimeout bounds how long a target waits for the claim frame itself.
const claimReadTimeout = 5 * time.Second

// SendClaim opens a stream to the target (connecting first if need be),
// writes the claim, calls sent (if not nil) and waits for the reply, at
// most replyWithin after the write and never past ctx's end. The stream may
// run over a relayed (limited) connection.
func SendClaim(ctx context.Context, h host.Host, to peer.ID, c discovery.Claim, replyWithin time.Duration, sent func()) (discovery.Reply, error) {
	s, err := openClaimStream(network.WithAllowLimitedConn(ctx, "claim"), h, to)
	if err != nil {
		return discovery.Reply{}, fmt.Errorf("claim %s: open stream: %w", to, err)
	}
	dl := time.Now().Add(replyWithin)
	if end, ok := ctx.Deadline(); ok && end.Before(dl) {
		dl = end
	}
	_ = s.SetDeadline(dl)
	err = discovery.WriteClaim(s, c)
	if err == nil {
		err = s.CloseWrite()
	}
	if err != nil {
		s.Reset()
		return discovery.Reply{}, fmt.Errorf("claim %s: write: %w", to, err)
	}
	if sent != nil {
		sent()
	}
	r, err := discovery.ReadReply(s, c.ID)
	if err != nil {
		s.Reset()
		return discovery.Reply{}, fmt.Errorf("claim %s: reply: %w", to, err)
	}
	_ = s.Close()
	return r, nil
}

// openClaimStream opens a claim stream to a peer, dialling it first if we
// have no connection. On a connection it dials itself it does not wait for
// identify, as host.NewStream does: identify costs a round trip and a
// signature check on each side, a claim needs neither (it names its
// protocol with its first write, and a peer that does not speak it answers
// with an error), and a claim waits for every step of its dial, on a
// loaded machine tens to hundreds of milliseconds each. Identify still runs
// on the connection, for whatever opens a stream next.
func openClaimStream(ctx context.Context, h host.Host, to peer.ID) (network.Stream, error) {
	if h.Network().Connectedness(to) == network.Connected {
		return h.NewStream(ctx, to, discovery.ClaimProtocol)
	}
	if _, err := h.Network().DialPeer(ctx, to); err != nil {
		return nil, err
	}
	s, err := h.Network().NewStream(network.WithNoDial(ctx, "dialled for a claim"), to)
	if err != nil {
		return nil, err
	}
	if err := s.SetProtocol(discovery.ClaimProtocol); err != nil {
		s.Reset()
		return nil, err
	}
	return &lazyStream{Stream: s, rw: msmux.NewMSSelect(s, discovery.ClaimProtocol)}, nil
}

// lazyStream is a stream whose protocol is selected with its first write
// and confirmed with its first read (multistream-select, as host.NewStream
// does for a peer whose protocols it knows).
type lazyStream struct {
	network.Stream
	rw msmux.LazyConn
}

func (s *lazyStream) Read(b []byte) (int, error)  { return s.rw.Read(b) }
func (s *lazyStream) Write(b []byte) (int, error) { return s.rw.Write(b) }

// CloseWrite sends the protocol selection first if nothing was written.
func (s *lazyStream) CloseWrite() error {
	_ = s.rw.Flush()
	return s.Stream.CloseWrite()
}

// Close bounds the wait for the selection's answer (go-multistream#47).
func (s *lazyStream) Close() error {
	_ = s.Stream.SetReadDeadline(time.Now().Add(claimReadTimeout))
	return s.rw.Close()
}

// ClaimHandler decides on an inbound claim. It may block until it has an
// answer, but must return when ctx ends; ok=false means no answer (the stream
// is reset).
type ClaimHandler func(ctx context.Context, from peer.ID, c discovery.Claim) (r discovery.Reply, ok bool)

// ReplyFailed learns that a reply could not be delivered (the claimer
// gave up or vanished): an Accept that never arrived is a match only one
// side believes in.
type ReplyFailed func(from peer.ID, r discovery.Reply)

// ClaimServer answers inbound claims on a host.
type ClaimServer struct {
	h       host.Host
	handle  ClaimHandler
	failed  ReplyFailed
	maxWait time.Duration
	log     *slog.Logger
	limits  *limit.PerPeer
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
}

// ServeClaims registers the claim protocol on h. Each inbound claim is handed
// to handle with at most maxWait to answer; failed hears of replies that could
// not be written. A peer may open at most
// perSecond claims a second (burst 4); more are reset with a debug log line.
func ServeClaims(h host.Host, handle ClaimHandler, failed ReplyFailed, maxWait time.Duration, perSecond float64, log *slog.Logger) *ClaimServer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cs := &ClaimServer{h: h, handle: handle, failed: failed, maxWait: maxWait, log: log,
		limits: limit.NewPerPeer(perSecond, 4), ctx: ctx, cancel: cancel}
	h.SetStreamHandler(discovery.ClaimProtocol, cs.serve)
	return cs
}

// Close removes the handler, cancels waiting claims and waits for them.
func (cs *ClaimServer) Close() error {
	cs.h.RemoveStreamHandler(discovery.ClaimProtocol)
	cs.cancel()
	cs.wg.Wait()
	return nil
}

func (cs *ClaimServer) serve(s network.Stream) {
	if cs.ctx.Err() != nil {
		s.Reset()
		return
	}
	cs.wg.Add(1)
	defer cs.wg.Done()
	from := s.Conn().RemotePeer()
	if !cs.limits.Allow(from) {
		cs.log.Debug("claim dropped: rate limit", "peer", from)
		s.Reset()
		return
	}
	_ = s.SetReadDeadline(time.Now().Add(claimReadTimeout))
	c, err := discovery.ReadClaim(s)
	if err != nil {
		cs.log.Debug("claim dropped", "peer", from, "err", err)
		s.Reset()
		return
	}
	ctx, cancel := context.WithTimeout(cs.ctx, cs.maxWait)
	r, ok := cs.handle(ctx, from, c)
	cancel()
	if !ok {
		s.Reset()
		return
	}
	_ = s.SetWriteDeadline(time.Now().Add(claimReadTimeout))
	err = discovery.WriteReply(s, r)
	if err == nil {
		err = s.Close()
	}
	if err != nil {
		cs.log.Debug("claim reply not sent", "peer", from, "err", err)
		s.Reset()
		if cs.failed != nil {
			cs.failed(from, r)
		}
	}
}
