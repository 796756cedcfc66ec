package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lab is one namespace internet with a relay in it.
type lab struct {
	t      *testing.T
	prefix string
	bin    string
	dir    string
	relay  string
	procs  []*exec.Cmd
}

func needNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("NAT tests build network namespaces and need root")
	}
	for _, tool := range []string{"ip", "nft", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("NAT tests need %s (apt-get install iproute2 nftables curl)", tool)
		}
	}
	if out, err := exec.Command("ip", "netns", "add", "sdprobe").CombinedOutput(); err != nil {
		t.Skipf("cannot create network namespaces here: %v: %s", err, out)
	}
	exec.Command("ip", "netns", "del", "sdprobe").Run()
}

var binPath string

// buildBinary builds serendip once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	if binPath != "" {
		return binPath
	}
	dir, err := os.MkdirTemp("", "serendip-e2e")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "serendip")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/serendip").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	binPath = bin
	return bin
}

func newLab(t *testing.T, prefix, natA, natB string) *lab {
	t.Helper()
	l := &lab{t: t, prefix: prefix, bin: buildBinary(t), dir: t.TempDir()}
	if out, err := exec.Command("./natlab.sh", "up", prefix, natA, natB).CombinedOutput(); err != nil {
		t.Fatalf("natlab up: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		for _, p := range l.procs {
			p.Process.Kill()
			p.Wait()
		}
		exec.Command("./natlab.sh", "down", prefix).Run()
	})
	addrFile := filepath.Join(l.dir, "relay.addrs")
	l.start("inet", "relay", "relay", "--network", "nat", "--data-dir", filepath.Join(l.dir, "relay"),
		"--listen", "/ip4/100.64.0.1/tcp/4001", "--listen", "/ip4/100.64.0.1/udp/4001/quic-v1",
		"--turn", "100.64.0.1:3478", "--addr-file", addrFile)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(addrFile)
		if line, _, _ := strings.Cut(string(b), "\n"); strings.Contains(line, "/p2p/") {
			l.relay = line
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay did not start; log:\n%s", l.log("relay"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return l
}

// start runs serendip in namespace <prefix><ns>, logging to name.log.
func (l *lab) start(ns, name string, args ...string) {
	l.t.Helper()
	f, err := os.Create(filepath.Join(l.dir, name+".log"))
	if err != nil {
		l.t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.prefix + ns, l.bin}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.procs = append(l.procs, cmd)
}

// node starts a bot in namespace ns.
func (l *lab) node(ns, name string, extra ...string) {
	args := []string{"node", "--network", "nat", "--bootstrap", l.relay, "--mdns=false",
		"--video", "../testdata/clip.ivf", "--audio", "../testdata/clip.ogg", "--auto",
		"--log-level", "debug", "--http", "127.0.0.1:7373"}
	l.start(ns, name, append(args, extra...)...)
}

func (l *lab) log(name string) string {
	b, _ := os.ReadFile(filepath.Join(l.dir, name+".log"))
	return string(b)
}

type apiState struct {
	State   string `json:"state"`
	Partner string `json:"partner"`
	Media   struct {
		Video uint64 `json:"video_frames_received"`
		Audio uint64 `json:"audio_packets_received"`
		Path  string `json:"path"`
	} `json:"media"`
}

func (l *lab) state(ns string) (apiState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", l.prefix+ns,
		"curl", "-fsS", "http://127.0.0.1:7373/api/state").Output()
	var st apiState
	if err == nil {
		err = json.Unmarshal(out, &st)
	}
	return st, err
}

// waitMedia waits until both nodes are in one call with media both ways.
func (l *lab) waitMedia(nsA, nsB string) (a, b apiState) {
	l.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var errA, errB error
		a, errA = l.state(nsA)
		b, errB = l.state(nsB)
		if errA == nil && errB == nil && a.State == "in_call" && b.State == "in_call" &&
			a.Media.Video > 20 && b.Media.Video > 20 && a.Media.Audio > 20 && b.Media.Audio > 20 {
			return a, b
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("no call with media both ways within 60 s: %+v (%v) / %+v (%v)\nlogs in %s", a, errA, b, errB, l.dir)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// sentCandidates lists "type address" of every candidate a node's log says
// it sent to a partner.
func sentCandidates(log string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `msg="signal out"`) {
			continue
		}
		_, c, ok := strings.Cut(line, "candidates=")
		if !ok {
			continue
		}
		c = strings.Trim(c, `"`)
		for _, part := range strings.Split(c, ", ") {
			if part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// TestNAT runs the cases of the NAT issue on real NAT in namespaces.
func TestNAT(t *testing.T) {
	if testing.Short() {
		t.Skip("namespace NAT tests; skipped in -short")
	}
	needNetns(t)
	prefix := fmt.Sprintf("s%d", os.Getpid()%1000)

	t.Run("cone-cone-direct", func(t *testing.T) {
		l := newLab(t, prefix, "cone", "cone")
		l.node("ha", "a", "--reachability", "private")
		l.node("hb", "b", "--reachability", "private")
		a, b := l.waitMedia("ha", "hb")
		t.Logf("paths: a %q, b %q", a.Media.Path, b.Media.Path)
		if a.Media.Path == "relay" || b.Media.Path == "relay" || a.Media.Path == "" {
			t.Errorf("behind cone NATs media took path %q / %q; want a direct one", a.Media.Path, b.Media.Path)
		}
	})
	t.Run("symmetric-symmetric-turn", func(t *testing.T) {
		l := newLab(t, prefix, "symmetric", "symmetric")
		l.node("ha", "a", "--reachability", "private")
		l.node("hb", "b", "--reachability", "private")
		a, b := l.waitMedia("ha", "hb")
		if a.Media.Path != "relay" || b.Media.Path != "relay" {
			t.Errorf("behind symmetric NATs media took path %q / %q; want relay (TURN)", a.Media.Path, b.Media.Path)
		}
	})
	t.Run("privacy-mode", func(t *testing.T) {
		l := newLab(t, prefix, "cone", "cone")
		l.node("ha", "private", "--reachability", "private", "--private")
		l.node("inet", "public", "--reachability", "public")
		a, _ := l.waitMedia("ha", "inet")
		if a.Media.Path != "relay" {
			t.Errorf("private node's media took path %q; want relay", a.Media.Path)
		}
		sent := sentCandidates(l.log("private"))
		relays := 0
		for _, c := range sent {
			if !strings.HasPrefix(c, "relay ") {
				t.Errorf("private node sent a %q candidate", c)
			} else {
				relays++
			}
		}
		if relays == 0 {
			t.Errorf("private node sent no relay candidate (sent %v); the check proves nothing", sent)
		}
	})
}
