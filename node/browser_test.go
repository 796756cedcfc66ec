package node_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/libp2p/go-libp2p/core/peer"

	"serendip/node"
)

// Browser tests drive real Chromium (Debian's chromium) with a fake camera
// and microphone against nodes on loopback. They skip, saying why, when no
// Chromium is installed; scripts/test.sh installs it where it can.

// chromiumPath finds Chromium, or skips the test.
func chromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SERENDIP_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("browser tests skipped: Chromium not found (install Debian's chromium, e.g. apt-get install -y chromium, " +
		"or set SERENDIP_CHROMIUM to a Chrome binary)")
	return ""
}

// artifactsDir is where screenshots go: $SERENDIP_ARTIFACTS, or a directory
// under the system temp dir that outlives the test.
func artifactsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("SERENDIP_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "serendip-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// uiNode is a node a person would run: no media files, the page served over
// HTTP, its browser media through the bridge.
type uiNode struct {
	n       *node.Node
	id      peer.ID
	url     string
	dataDir string
}

func (nw *testNet) uiNode() *uiNode {
	t := nw.t
	h := newHost(t)
	cfg := node.LocalConfig()
	cfg.Network = nw.name
	cfg.Bootstrap = []peer.AddrInfo{nw.relay}
	cfg.DataDir = t.TempDir()
	cfg.BridgeLoopbackOnly = true
	cfg.Logger = testLogger(t)
	n, err := node.New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	// The server closes after the node, so event streams end first.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { n.Close() })
	return &uiNode{n: n, id: h.ID(), url: srv.URL, dataDir: cfg.DataDir}
}

// browser is one headless Chromium with one tab on a node's page.
type browser struct {
	t    testing.TB
	name string
	ctx  context.Context
}

func newBrowser(t testing.TB, name, url string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1280, 800),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(string, ...any) {}))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &browser{t: t, name: name, ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			t.Logf("%s: page exception: %s", name, ev.ExceptionDetails.Error())
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError || ev.Type == runtime.APITypeWarning {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value))
				}
				t.Logf("%s: console.%s %s", name, ev.Type, strings.Join(args, " "))
			}
		}
	})
	// The first Run starts the browser; its context must live as long as the
	// browser (cancelling it would close the browser), so no timeout here.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("%s: starting Chromium: %v", name, err)
	}
	b.run(chromedp.Navigate(url))
	return b
}

func (b *browser) run(actions ...chromedp.Action) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", b.name, err)
	}
}

// eval evaluates a JavaScript expression into out.
func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	b.run(chromedp.Evaluate(expr, out))
}

// waitJS polls a JavaScript boolean expression until it holds.
func (b *browser) waitJS(d time.Duration, what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(d)
	for {
		var ok bool
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		err := chromedp.Run(ctx, chromedp.Evaluate("!!("+expr+")", &ok))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			var status string
			_ = chromedp.Run(b.ctx, chromedp.Evaluate(`document.getElementById('status').textContent + ' | ' + JSON.stringify(window.serendip.state)`, &status))
			b.t.Fatalf("%s: timed out after %v waiting for %s (err %v); page: %s", b.name, d, what, err, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *browser) click(id string) {
	b.t.Helper()
	b.waitJS(10*time.Second, id+" to be enabled", `!document.getElementById('`+id+`').disabled`)
	b.run(chromedp.Click("#"+id, chromedp.ByQuery))
}

func (b *browser) typeInto(id, text string) {
	b.t.Helper()
	b.waitJS(10*time.Second, id+" to be enabled", `!document.getElementById('`+id+`').disabled`)
	b.run(chromedp.SendKeys("#"+id, text, chromedp.ByQuery))
}

func (b *browser) frames() int {
	b.t.Helper()
	var n int
	b.eval(`document.getElementById('remote-video').getVideoPlaybackQuality().totalVideoFrames`, &n)
	return n
}

func (b *browser) text(id string) string {
	b.t.Helper()
	var s string
	b.eval(`document.getElementById('`+id+`').textContent`, &s)
	return s
}

// screenshot saves the viewport as a PNG in the artifacts directory.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	var png []byte
	b.run(chromedp.CaptureScreenshot(&png))
	path := filepath.Join(artifactsDir(b.t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("%s: screenshot %s", b.name, path)
	return path
}

// seesStranger waits until the page plays a stranger's video: the remote
// video has a size and its decoded frame count rises.
func (b *browser) seesStranger(d time.Duration) {
	b.t.Helper()
	b.waitJS(d, "the stranger's video", `(() => {
		const v = document.getElementById('remote-video');
		return document.getElementById('stage').dataset.phase === 'video' &&
			v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 5 &&
			getComputedStyle(document.getElementById('overlay')).opacity === '0';
	})()`)
	before := b.frames()
	b.waitJS(5*time.Second, "decoded frames to keep rising",
		`document.getElementById('remote-video').getVideoPlaybackQuality().totalVideoFrames > `+strconv.Itoa(before+5))
}

func (b *browser) partner() string {
	b.t.Helper()
	var p string
	b.eval(`(window.serendip.state && window.serendip.state.state === 'in_call') ? window.serendip.state.partner : ''`, &p)
	return p
}

// TestBrowser: two people in Chromium on two nodes see and hear each other,
// chat both ways with a typing indicator, keep their call across a page
// reload, move on with Next (both sides see the call end, and a third node
// is matched), and Block keeps a stranger out for good.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test with real Chromium; skipped in -short")
	}
	chromiumPath(t)
	began := time.Now()
	nw := newNetwork(t)
	a, b := nw.uiNode(), nw.uiNode()
	ba, bb := newBrowser(t, "A", a.url), newBrowser(t, "B", b.url)
	for _, br := range []*browser{ba, bb} {
		br.waitJS(20*time.Second, "the page's media connection to its node", `window.serendip.bridge === 'connected'`)
	}

	// Start, with interests; only A and B are on the network, so they meet.
	ba.typeInto("interests", "music, chess")
	bb.typeInto("interests", "Music")
	ba.screenshot("start-screen-a")
	ba.click("start")
	bb.click("start")
	ba.seesStranger(30 * time.Second)
	bb.seesStranger(30 * time.Second)
	if pa, pb := ba.partner(), bb.partner(); pa != b.id.String() || pb != a.id.String() {
		t.Fatalf("A's partner %s, B's %s; want each other", pa, pb)
	}
	var width int
	ba.eval(`document.getElementById('remote-video').videoWidth`, &width)
	t.Logf("A sees B's camera at width %d", width)
	for _, br := range []*browser{ba, bb} {
		br.waitJS(5*time.Second, "shared interests", `document.getElementById('shared').textContent.includes('music')`)
	}

	// Chat both ways, and the typing indicator.
	ba.typeInto("chat-input", "hello from A")
	ba.click("chat-send")
	bb.waitJS(10*time.Second, "A's message", `document.getElementById('chat-log').textContent.includes('hello from A')`)
	bb.typeInto("chat-input", "hi A, B here")
	ba.waitJS(10*time.Second, "B typing", `!document.getElementById('typing').hidden`)
	bb.run(chromedp.KeyEvent(kb.Enter))
	ba.waitJS(10*time.Second, "B's message", `document.getElementById('chat-log').textContent.includes('hi A, B here')`)
	ba.waitJS(10*time.Second, "the typing indicator to go", `document.getElementById('typing').hidden`)
	ba.screenshot("connected-laptop-a")
	bb.screenshot("connected-laptop-b")
	bb.run(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	bb.screenshot("connected-phone-b")
	bb.run(chromedp.EmulateViewport(1280, 800))

	// A page reload gets a fresh bridge and the call's video back.
	ba.run(chromedp.Reload())
	ba.waitJS(20*time.Second, "the reloaded page's media connection", `window.serendip.bridge === 'connected'`)
	ba.seesStranger(20 * time.Second)
	bb.seesStranger(10 * time.Second)
	if st := state(t, a.n); st.State != "in_call" || st.Partner != b.id.String() {
		t.Fatalf("after the reload A is %s with %s; want in_call with B", st.State, st.Partner)
	}

	// Next (Esc): both sides see the call end, and A meets a newcomer, C.
	c, ch := nw.bot(0)
	waitFor(t, 20*time.Second, "C to search", func() bool { return state(t, c).State == "searching" })
	ba.run(chromedp.KeyEvent(kb.Escape))
	bb.waitJS(10*time.Second, "B to see the stranger leave", `document.getElementById('chat-log').textContent.includes('Stranger left')`)
	if got := bb.text("status"); !strings.Contains(got, "Stranger left") {
		t.Errorf("B's status after A's Next: %q", got)
	}
	bb.screenshot("stranger-left-b")
	ba.waitJS(30*time.Second, "A to meet C", `window.serendip.state && window.serendip.state.state === 'in_call' && window.serendip.state.partner === '`+ch.ID().String()+`'`)
	ba.seesStranger(20 * time.Second)
	ba.screenshot("connected-bot-a")

	// Block C: A never meets C again, though C keeps looking; a newcomer D
	// (who blocks C too, so it cannot take C first) is matched instead.
	ba.click("block")
	ba.waitJS(10*time.Second, "the block to end the call", `window.serendip.state.state !== 'in_call'`)
	d, dh := nw.bot(0)
	if err := d.Block(ch.ID()); err != nil {
		t.Fatal(err)
	}
	ba.waitJS(30*time.Second, "A to meet D", `window.serendip.state.state === 'in_call' && window.serendip.state.partner === '`+dh.ID().String()+`'`)
	ba.seesStranger(20 * time.Second)
	for _, r := range history(t, a.n) {
		if r.Partner == ch.ID().String() && r.Reason != "blocked" {
			t.Errorf("A met C after blocking it: %+v", r)
		}
	}
	blocked, err := os.ReadFile(filepath.Join(a.dataDir, "blocked.txt"))
	if err != nil || !strings.Contains(string(blocked), ch.ID().String()) {
		t.Errorf("C not in A's blocklist file: %q, %v", blocked, err)
	}
	// A hangs up on D: the only other searcher A may pair with is C, whom
	// A blocked.
	ba.click("next")
	waitFor(t, 10*time.Second, "A to leave D", func() bool { return state(t, a.n).Partner != dh.ID().String() })
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if st := state(t, a.n); st.Partner == ch.ID().String() {
			t.Fatalf("A matched C after blocking it")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("browser test took %v", time.Since(began).Round(time.Millisecond))
}

// TestBrowserFirstFrame measures, in Chromium, the time from pressing Start
// on a warm network to the first decoded frame of the stranger, and from
// pressing Next to the next stranger's first frame. It runs only with
// SERENDIP_BENCH_ROUNDS set (a benchmark, not a timed test):
//
//	SERENDIP_BENCH_ROUNDS=20 go test ./node/ -run TestBrowserFirstFrame -v
//
// The network is warm: the bots (SERENDIP_BENCH_BOTS, default 2) are all
// searching and known to the user's node before Start.
func TestBrowserFirstFrame(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("SERENDIP_BENCH_ROUNDS"))
	if rounds <= 0 {
		t.Skip("benchmark: set SERENDIP_BENCH_ROUNDS=20 to run it")
	}
	chromiumPath(t)
	nw := newNetwork(t)
	// Bots that never meet each other, all waiting for the user, as in
	// serendip demo: two unless SERENDIP_BENCH_BOTS says otherwise.
	nbots, _ := strconv.Atoi(os.Getenv("SERENDIP_BENCH_BOTS"))
	if nbots < 2 {
		nbots = 2
	}
	var bots []*node.Node
	var ids []peer.ID
	for range nbots {
		n, h := nw.botWith(0, func(c *node.Config) { c.Matcher.RecentPartners = 0 }) // as in serendip demo
		bots = append(bots, n)
		ids = append(ids, h.ID())
	}
	for i, n := range bots {
		for j, id := range ids {
			if i != j {
				if err := n.Block(id); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	u := nw.uiNode()
	br := newBrowser(t, "user", u.url)
	br.waitJS(20*time.Second, "the page's media connection", `window.serendip.bridge === 'connected'`)

	type sample struct{ press, match, frame time.Duration }
	var starts, nexts []sample
	measure := func(round int) sample {
		var r struct {
			PressedAt, MatchedAt, FirstFrameAt float64
		}
		br.waitJS(20*time.Second, "the stranger's first frame",
			`window.serendip.rounds.length === `+strconv.Itoa(round)+` && window.serendip.lastRound().firstFrameAt > 0`)
		br.eval(`(() => { const r = window.serendip.lastRound(); return {PressedAt: r.pressedAt, MatchedAt: r.matchedAt, FirstFrameAt: r.firstFrameAt}; })()`, &r)
		ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
		return sample{press: ms(r.FirstFrameAt - r.PressedAt), match: ms(r.MatchedAt - r.PressedAt), frame: ms(r.FirstFrameAt - r.MatchedAt)}
	}
	round := 0
	for i := range rounds {
		// Warm: every bot searching and known to the user's node.
		waitFor(t, 30*time.Second, "a warm network", func() bool {
			for _, n := range bots {
				if state(t, n).State != "searching" {
					return false
				}
			}
			return state(t, u.n).Available >= len(bots)-1
		})
		br.click("start")
		round++
		starts = append(starts, measure(round))
		br.run(chromedp.KeyEvent(kb.Escape)) // Next
		round++
		nexts = append(nexts, measure(round))
		br.click("stop")
		waitFor(t, 10*time.Second, "the user to stop", func() bool { return state(t, u.n).State == "idle" })
		var nodeSide []string // the node's own view: match to connected media, to the partner's first frame
		hist := history(t, u.n)
		for _, r := range hist[max(0, len(hist)-2):] {
			nodeSide = append(nodeSide, fmt.Sprintf("setup %dms first frame %dms", r.SetupMillis, r.FirstFrameMillis))
		}
		t.Logf("round %d: start->frame %v (match %v), next->frame %v (match %v); node: %s", i+1,
			starts[i].press.Round(time.Millisecond), starts[i].match.Round(time.Millisecond),
			nexts[i].press.Round(time.Millisecond), nexts[i].match.Round(time.Millisecond), strings.Join(nodeSide, ", "))
	}
	report := func(name string, s []sample) {
		var total, match, frame []time.Duration
		for _, x := range s {
			total, match, frame = append(total, x.press), append(match, x.match), append(frame, x.frame)
		}
		t.Logf("%s over %d rounds: to first frame median %v p95 %v (to match median %v; match to frame median %v)",
			name, len(s), pct(total, 50), pct(total, 95), pct(match, 50), pct(frame, 50))
	}
	report("Start", starts)
	report("Next", nexts)
}

// pct is the p-th percentile (nearest rank).
func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (p*len(s) + 99) / 100
	return s[max(i-1, 0)].Round(time.Millisecond)
}
