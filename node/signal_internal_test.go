package node

import (
	"testing"

	"serendip/media"
)

func TestCandidateSummary(t *testing.T) {
	for _, c := range []struct {
		sig  media.Signal
		want string
	}{
		{media.Signal{Kind: media.SignalCandidate, Candidate: `{"candidate":"candidate:1 1 udp 2130706431 192.0.2.2 5000 typ host","sdpMid":"0"}`}, "host 192.0.2.2"},
		{media.Signal{Kind: media.SignalCandidate, Candidate: `{"candidate":"candidate:2 1 udp 16777215 198.51.100.1 6000 typ relay raddr 0.0.0.0 rport 0"}`}, "relay 198.51.100.1"},
		{media.Signal{Kind: media.SignalOffer, SDP: "v=0\r\na=candidate:1 1 udp 1 192.0.2.2 5000 typ host\r\na=candidate:3 1 udp 1 198.51.100.2 7000 typ srflx raddr 192.0.2.2 rport 5000\r\n"}, "host 192.0.2.2, srflx 198.51.100.2"},
		{media.Signal{Kind: media.SignalCandidate, Candidate: `garbage`}, ""},
		{media.Signal{Kind: media.SignalBye}, ""},
	} {
		if got := candidateSummary(c.sig); got != c.want {
			t.Errorf("%+v: got %q, want %q", c.sig, got, c.want)
		}
	}
}
