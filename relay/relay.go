package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"

	"serendip/discovery"
	"serendip/discovery/p2p"
	"serendip/internal/bootstrap"
)

// Config configures a relay.
type Config struct {
	// Network names the Serendip network whose presence topic is served.
	Network string
	// Bootstrap are other relays or DHT servers to join; none is fine for the
	// first relay of a network.
	Bootstrap []peer.AddrInfo
	// PresenceTTL is the longest presence lifetime the validator accepts.
	PresenceTTL time.Duration
	Logger      *slog.Logger
}

// Validate reports a configuration error.
func (c Config) Validate() error {
	if c.Network == "" {
		return errors.New("relay: empty network name")
	}
	if c.PresenceTTL <= 0 {
		return errors.New("relay: presence TTL must be positive")
	}
	return nil
}

// DefaultConfig serves the network "main".
func DefaultConfig() Config {
	return Config{Network: "main", PresenceTTL: discovery.DefaultConfig().PresenceTTL}
}

// Relay is a running relay service on a host it does not own.
type Relay struct {
	h      host.Host
	cfg    Config
	log    *slog.Logger
	dht    *dht.IpfsDHT
	relay  *relayv2.Relay
	ps     *pubsub.PubSub
	topic  *pubsub.Topic
	sub    *pubsub.Subscription
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New starts the relay services on h.
func New(h host.Host, cfg Config) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{h: h, cfg: cfg, log: log, ctx: ctx, cancel: cancel}
	fail := func(err error) (*Relay, error) {
		r.Close()
		return nil, err
	}
	var err error
	if r.relay, err = relayv2.New(h); err != nil {
		return fail(fmt.Errorf("relay: circuit relay: %w", err))
	}
	if r.dht, err = dht.New(h, append(providerOptions(), dht.Mode(dht.ModeServer), dht.BootstrapPeers(cfg.Bootstrap...))...); err != nil {
		return fail(fmt.Errorf("relay: dht: %w", err))
	}
	if err := r.dht.Bootstrap(ctx); err != nil {
		return fail(fmt.Errorf("relay: dht bootstrap: %w", err))
	}
	// No peer exchange: nodes find their mesh through the DHT rendezvous.
	// With it, every node the relay pruned from its mesh (all but a dozen)
	// dialled the 16 nodes named in the prune, again at every prune: at
	// 200 nodes on one machine, half of all connections and their
	// handshakes.
	if r.ps, err = pubsub.NewGossipSub(ctx, h,
		pubsub.WithMaxMessageSize(64<<10),
	); err != nil {
		return fail(fmt.Errorf("relay: gossipsub: %w", err))
	}
	name := discovery.PresenceTopic(cfg.Network)
	if err := p2p.NewValidator(cfg.PresenceTTL, log).Register(r.ps, name); err != nil {
		return fail(fmt.Errorf("relay: presence validator: %w", err))
	}
	if r.topic, err = r.ps.Join(name); err != nil {
		return fail(fmt.Errorf("relay: join %s: %w", name, err))
	}
	if r.sub, err = r.topic.Subscribe(); err != nil {
		return fail(fmt.Errorf("relay: subscribe %s: %w", name, err))
	}
	r.wg.Add(2)
	go r.drain()
	go func() {
		defer r.wg.Done()
		bootstrap.Connect(ctx, h, cfg.Bootstrap, log, nil)
	}()
	return r, nil
}

// drain consumes the presence topic: a relay routes presence but has no use
// for it, and a subscription that is not read would fill up.
func (r *Relay) drain() {
	defer r.wg.Done()
	for {
		if _, err := r.sub.Next(r.ctx); err != nil {
			return
		}
	}
}

// Addrs returns the relay's dialable addresses, each ending in /p2p/<id>.
func (r *Relay) Addrs() []ma.Multiaddr {
	return P2PAddrs(r.h)
}

// P2PAddrs returns h's listen addresses with /p2p/<id> appended.
func P2PAddrs(h host.Host) []ma.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	if err != nil {
		return nil
	}
	return addrs
}

// Close stops the services (not the host). Idempotent.
func (r *Relay) Close() error {
	r.once.Do(func() {
		r.cancel()
		if r.sub != nil {
			r.sub.Cancel()
		}
		if r.topic != nil {
			_ = r.topic.Close()
		}
		if r.dht != nil {
			_ = r.dht.Close()
		}
		if r.relay != nil {
			_ = r.relay.Close()
		}
		r.wg.Wait()
	})
	return nil
}
