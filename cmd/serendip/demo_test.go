package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestDemo runs "serendip demo" and a newcomer's Chromium on its page: they
// press Start and see a bot's video and its hello within seconds; Next brings
// the mirror bot, which shows them their own camera and echoes their chat.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo and Chromium; skipped in -short")
	}
	chromium := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if p := os.Getenv("SERENDIP_CHROMIUM"); p != "" {
		chromium = p
	}
	if chromium == "" {
		t.Skip("demo browser test skipped: Chromium not found (apt-get install -y chromium, or set SERENDIP_CHROMIUM)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	level := os.Getenv("SERENDIP_TEST_LOG")
	if level == "" {
		level = "error"
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, []string{"--http", addr, "--bridge-loopback", "--log-level", level})
	}()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("demo did not stop")
		}
	})

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true), chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"), chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(1280, 800)) // chromedp makes and removes the profile directory once Chromium exits
	defer cancelAlloc()
	bctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(string, ...any) {}))
	defer cancel()
	if err := chromedp.Run(bctx); err != nil {
		t.Fatal(err)
	}
	run := func(actions ...chromedp.Action) {
		t.Helper()
		c, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Run(c, actions...); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(d time.Duration, what, expr string) {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			var ok bool
			c, cancel := context.WithTimeout(bctx, 5*time.Second)
			err := chromedp.Run(c, chromedp.Evaluate("!!("+expr+")", &ok))
			cancel()
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				var page string
				_ = chromedp.Run(bctx, chromedp.Evaluate(`document.getElementById('status').textContent`, &page))
				t.Fatalf("timed out after %v waiting for %s; status: %q", d, what, page)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The current stranger's picture is on screen: the page saw its first
	// frame after the match, the overlay is gone and frames are decoded.
	const playing = `(() => { const v = document.getElementById('remote-video');
		const r = window.serendip.lastRound();
		return r && r.firstFrameAt > 0 && v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 10 &&
			getComputedStyle(document.getElementById('overlay')).opacity === '0'; })()`

	// The URL printed is http://localhost:<port>.
	_, port, _ := net.SplitHostPort(addr)
	run(chromedp.Navigate(fmt.Sprintf("http://localhost:%s", port)))
	wait(20*time.Second, "the page's media connection", `window.serendip && window.serendip.bridge === 'connected'`)
	began := time.Now()
	run(chromedp.Click("#start", chromedp.ByQuery))
	wait(20*time.Second, "a bot's video", playing)
	wait(10*time.Second, "the bot's hello", `document.getElementById('chat-log').textContent.includes('Hi!')`)
	t.Logf("Start to a bot's video and hello: %v", time.Since(began).Round(time.Millisecond))

	// Next until the mirror bot: it shows the user's own camera (the fake
	// device's green frame) and echoes chat.
	for i := 0; ; i++ {
		var mirror bool
		run(chromedp.Evaluate(`document.getElementById('chat-log').textContent.includes('mirror bot: you see')`, &mirror))
		if mirror {
			break
		}
		if i == 3 {
			t.Fatal("never met the mirror bot")
		}
		var partner string
		run(chromedp.Evaluate(`window.serendip.state.partner`, &partner))
		run(chromedp.KeyEvent(kb.Escape))
		wait(20*time.Second, "the next bot", `window.serendip.state.state === 'in_call' && window.serendip.state.partner !== '`+partner+`'`)
		wait(20*time.Second, "the next bot's hello", `document.getElementById('chat-log').textContent.includes('Hi!')`)
	}
	wait(20*time.Second, "the mirror's video", playing)
	run(chromedp.SendKeys("#chat-input", "is this thing on?", chromedp.ByQuery), chromedp.KeyEvent(kb.Enter))
	wait(10*time.Second, "the echo", `[...document.querySelectorAll('#chat-log .stranger')].some(li => li.textContent.includes('is this thing on?'))`)
	var png []byte
	run(chromedp.CaptureScreenshot(&png))
	dir := os.Getenv("SERENDIP_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "serendip-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err == nil {
		path := filepath.Join(dir, "demo-mirror.png")
		if err := os.WriteFile(path, png, 0o644); err == nil {
			t.Logf("screenshot %s", path)
		}
	}
}
