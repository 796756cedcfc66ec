package discovery

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func FuzzParsePresence(f *testing.F) {
	for _, p := range []Presence{{}, {Seq: 1, Expires: 2, Searching: true, Interests: []string{"go", "été"}, Addrs: [][]byte{{4, 127, 0, 0, 1, 6, 0x10, 0x01}}}, maxPresence()} {
		b, err := p.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePresence(b)
		if err != nil {
			return
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("parsed %+v but cannot marshal: %v", p, err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("not canonical:\n in %x\nout %x", b, out)
		}
		q, err := ParsePresence(out)
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip: %+v != %+v (%v)", p, q, err)
		}
	})
}

func FuzzParseClaim(f *testing.F) {
	b, _ := Claim{ID: MatchID{1, 2}, Ticket: 3}.Marshal()
	f.Add(b)
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseClaim(b)
		if err != nil {
			return
		}
		out, err := c.Marshal()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("round trip %x -> %+v -> %x (%v)", b, c, out, err)
		}
	})
}

func FuzzParseReply(f *testing.F) {
	b, _ := Reply{ID: MatchID{1, 2}, Verdict: RefuseCrossing}.Marshal()
	f.Add(b)
	f.Add([]byte{1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReply(b)
		if err != nil {
			return
		}
		out, err := r.Marshal()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("round trip %x -> %+v -> %x (%v)", b, r, out, err)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 2, 1, 2})
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ReadFrame(bytes.NewReader(b), MaxClaimFrame)
		if err != nil {
			return
		}
		if len(got) == 0 || len(got) > MaxClaimFrame {
			t.Fatalf("frame of %d bytes", len(got))
		}
		var buf bytes.Buffer
		if err := WriteFrame(&buf, got); err != nil || !bytes.HasPrefix(b, buf.Bytes()) {
			t.Fatalf("rewrite %x of %x (%v)", buf.Bytes(), b, err)
		}
	})
}

// FuzzMatcher drives one matcher with an arbitrary event sequence: it must
// never panic, and its status must stay consistent.
func FuzzMatcher(f *testing.F) {
	f.Add([]byte{0, 0, 5, 1, 7, 2, 8, 3, 9, 0, 10, 1})
	f.Add([]byte{0, 0, 5, 1, 6, 1, 11, 1, 1, 200, 12, 0, 13, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg := LocalConfig()
		cfg.RecentPartners = int(len(b) % 3)
		cfg.ClaimJitter = time.Duration(len(b)%2) * 50 * time.Millisecond
		cfg.ConnectTimeout = time.Duration(len(b)%3) * time.Second
		m, err := NewMatcher(me, cfg, rand.New(rand.NewPCG(uint64(len(b)), 1)))
		if err != nil {
			t.Fatal(err)
		}
		peers := []PeerID{me, pa, pb, pc}
		now := t0
		for len(b) >= 2 {
			op, arg := b[0], b[1]
			b = b[2:]
			p := peers[arg%4]
			s := m.Status()
			var c Claim
			c.Ticket = uint64(arg % 3)
			c.ID[0] = arg
			id := c.ID
			if arg&0x10 != 0 {
				id = s.MatchID
			}
			var ev Event
			switch op % 16 {
			case 0:
				ev = Start{Interests: []string{[]string{"go", "chess", "Go"}[arg%3]}}
			case 1:
				ev = Stop{}
			case 2:
				ev = Next{}
			case 3:
				ev = Block{Peer: p}
			case 4:
				ev = PresenceSeen{Peer: p, Expires: now.Add(time.Duration(arg) * 50 * time.Millisecond), Searching: arg&1 == 0, Interests: []string{"go"}}
			case 5:
				ev = PeerGone{Peer: p}
			case 6:
				ev = ClaimReceived{From: p, Claim: c}
			case 7:
				ev = ReplyReceived{From: s.Partner, Reply: Reply{ID: id, Verdict: Verdict(arg % 8)}}
			case 8:
				ev = ReplyReceived{From: p, Reply: Reply{ID: id, Verdict: Accept}}
			case 9:
				ev = ClaimFailed{To: s.Partner, ID: id}
			case 10:
				ev = CallStarted{ID: id}
			case 11:
				ev = CallEnded{ID: id, Rematch: arg&1 == 0}
			case 12:
				if !s.NextWake.IsZero() {
					now = s.NextWake
				}
				ev = Tick{}
			case 13:
				now = now.Add(time.Duration(arg) * 20 * time.Millisecond)
				ev = Tick{}
			case 14:
				ev = nil
			case 15:
				ev = ClaimSent{To: s.Partner, ID: id}
			}
			acts := m.Step(now, ev)
			s = m.Status()
			if !s.NextWake.IsZero() && !s.NextWake.After(now) {
				t.Fatalf("NextWake %v not after %v", s.NextWake, now)
			}
			switch s.State {
			case StateIdle, StateSearching:
				if s.Partner != "" || !s.MatchID.IsZero() {
					t.Fatalf("%v with partner: %+v", s.State, s)
				}
			case StateClaiming, StateMatched:
				if s.Partner == "" || s.Partner == me || m.Blocked(s.Partner) {
					t.Fatalf("bad partner: %+v", s)
				}
			}
			matched := 0
			for _, a := range acts {
				switch a := a.(type) {
				case Matched:
					matched++
					if s.State != StateMatched || a.Peer != s.Partner || a.ID != s.MatchID {
						t.Fatalf("Matched %+v but status %+v", a, s)
					}
				case SendReply:
					if !a.Reply.Verdict.Valid() {
						t.Fatalf("invalid verdict %+v", a)
					}
				case Announce:
					if _, err := a.Presence(1, nil).Marshal(); err != nil {
						t.Fatalf("announce does not encode: %v", err)
					}
				}
			}
			if matched > 1 {
				t.Fatalf("%d Matched in one step", matched)
			}
		}
	})
}
