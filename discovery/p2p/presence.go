package p2p

import (
	"context"
	"log/slog"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"serendip/discovery"
)

// Namespace is the DHT rendezvous namespace of a network.
func Namespace(network string) string { return "serendip/" + network }

// Validator checks presence messages for one topic. It keeps the last
// sequence number seen per author. Safe for concurrent use.
type Validator struct {
	maxTTL time.Duration
	log    *slog.Logger
	now    func() time.Time
	seqs   *discovery.SeqTracker
}

// NewValidator returns a validator refusing presence that expires more than
// maxTTL in the future.
func NewValidator(maxTTL time.Duration, log *slog.Logger) *Validator {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Validator{maxTTL: maxTTL, log: log, now: time.Now, seqs: discovery.NewSeqTracker(0, maxTTL)}
}

// Validate is a pubsub.ValidatorEx. On success the parsed Presence is left in
// msg.ValidatorData.
func (v *Validator) Validate(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	author := msg.GetFrom()
	if len(msg.GetData()) > discovery.MaxPresenceSize {
		v.log.Debug("presence dropped", "author", author, "via", from, "err", discovery.ErrTooLarge)
		return pubsub.ValidationReject
	}
	p, err := discovery.ParsePresence(msg.GetData())
	if err != nil {
		v.log.Debug("presence dropped", "author", author, "via", from, "err", err)
		return pubsub.ValidationReject
	}
	now := v.now()
	if err := p.Check(now, v.maxTTL); err != nil {
		// Expired presence is ordinary on a slow network: ignore, do not penalise.
		v.log.Debug("presence ignored", "author", author, "via", from, "err", err)
		return pubsub.ValidationIgnore
	}
	if !v.seqs.Accept(discovery.PeerID(author), p.Seq, now) {
		v.log.Debug("presence ignored: old sequence", "author", author, "seq", p.Seq)
		return pubsub.ValidationIgnore
	}
	msg.ValidatorData = p
	return pubsub.ValidationAccept
}

// Register installs the validator on topic.
func (v *Validator) Register(ps *pubsub.PubSub, topic string) error {
	return ps.RegisterTopicValidator(topic, pubsub.ValidatorEx(v.Validate))
}
