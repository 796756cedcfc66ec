package discovery

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigPresets(t *testing.T) {
	for name, c := range map[string]Config{"default": DefaultConfig(), "local": LocalConfig()} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"hold = claim", func(c *Config) { c.HoldTimeout = c.ClaimTimeout }, "HoldTimeout (5s) must be less than ClaimTimeout (5s)"},
		{"zero claim", func(c *Config) { c.ClaimTimeout = 0 }, "ClaimTimeout must be positive"},
		{"zero hold", func(c *Config) { c.HoldTimeout = 0 }, "HoldTimeout must be positive"},
		{"zero setup", func(c *Config) { c.SetupTimeout = 0 }, "SetupTimeout must be positive"},
		{"negative jitter", func(c *Config) { c.ClaimJitter = -1 }, "ClaimJitter must not be negative"},
		{"ttl <= announce", func(c *Config) { c.PresenceTTL = c.AnnounceInterval }, "AnnounceInterval (5s) must be less than PresenceTTL (5s)"},
		{"zero announce", func(c *Config) { c.AnnounceInterval = 0 }, "AnnounceInterval must be positive"},
		{"negative recent", func(c *Config) { c.RecentPartners = -1 }, "RecentPartners must not be negative"},
		{"negative wait", func(c *Config) { c.InterestWait = -time.Second }, "InterestWait must not be negative"},
		{"negative connect timeout", func(c *Config) { c.ConnectTimeout = -time.Second }, "ConnectTimeout must not be negative"},
		{"zero pool", func(c *Config) { c.MaxPool = 0 }, "MaxPool must be positive"},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		tt.mod(&c)
		err := c.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
	c := DefaultConfig()
	c.ClaimTimeout, c.MaxPool = 0, 0
	if err := c.Validate(); strings.Count(err.Error(), "discovery: invalid config") != 2 {
		t.Errorf("want both errors: %v", err)
	}
	c = DefaultConfig()
	c.ClaimJitter, c.InterestWait, c.RecentPartners = 0, 0, 0
	if err := c.Validate(); err != nil {
		t.Errorf("zero optional fields: %v", err)
	}
}
