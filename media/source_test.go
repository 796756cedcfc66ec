package media

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	pmedia "github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
)

type stamped struct {
	at time.Time
	s  pmedia.Sample
}

// sampleRecorder is a SampleWriter that keeps what it gets and says when it
// has n samples.
type sampleRecorder struct {
	mu      sync.Mutex
	samples []stamped
	n       int
	enough  chan struct{}
}

func newSampleRecorder(n int) *sampleRecorder {
	return &sampleRecorder{n: n, enough: make(chan struct{})}
}

func (r *sampleRecorder) WriteSample(s pmedia.Sample) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, stamped{time.Now(), s})
	if len(r.samples) == r.n {
		close(r.enough)
	}
	return errors.New("writers may fail; sources go on")
}

// runSource runs src until the recorder has n samples and returns them.
func runSource(t *testing.T, src Source, n int) []stamped {
	t.Helper()
	rec := newSampleRecorder(n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, rec) }()
	select {
	case <-rec.enough:
	case err := <-done:
		cancel()
		t.Fatalf("source ended early: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("source too slow")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.samples[:n]
}

// shortIVF writes the first three frames of clip.ivf with the given timebase
// and pts step.
func shortIVF(t *testing.T, num, den uint32, step uint64) string {
	t.Helper()
	f, err := os.Open(clipIVF)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := ivfreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	h := ivfHeader("VP80")
	putU32 := func(b []byte, v uint32) { b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24) }
	putU32(h[16:], den)
	putU32(h[20:], num)
	out := h
	for i := range 3 {
		frame, _, err := r.ParseNextFrame()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ivfFrame(uint64(i)*step, frame)...)
	}
	return writeFile(t, "short.ivf", out)
}

// shareOrStream runs f twice: with the files' samples read once and shared,
// and with them read as they play (as a file over maxSharedClip is).
func shareOrStream(t *testing.T, f func(t *testing.T)) {
	t.Run("shared", f)
	t.Run("streamed", func(t *testing.T) {
		old := maxSharedClip
		maxSharedClip = -1
		t.Cleanup(func() { maxSharedClip = old })
		f(t)
	})
}

func TestIVFSourceLoopsAndPaces(t *testing.T) {
	for _, tc := range []struct {
		name     string
		num, den uint32
		step     uint64
	}{
		{"15 fps timebase", 1, 15, 1},
		{"90 kHz timebase", 1, 90000, 6000}, // as our own recordings
	} {
		t.Run(tc.name, func(t *testing.T) {
			shareOrStream(t, func(t *testing.T) {
				path := shortIVF(t, tc.num, tc.den, tc.step)
				if err := CheckVideoFile(path); err != nil {
					t.Fatal(err)
				}
				const n = 7 // three frames, looped twice and a bit
				got := runSource(t, IVFSource{Path: path}, n)
				frame := time.Second / 15
				for i, s := range got {
					if d := s.s.Duration - frame; d < -time.Millisecond || d > time.Millisecond {
						t.Errorf("sample %d lasts %v, want %v", i, s.s.Duration, frame)
					}
				}
				if !isVP8KeyframeData(got[3].s.Data) {
					t.Error("the loop does not restart at the first (key) frame")
				}
				if elapsed := got[n-1].at.Sub(got[0].at); elapsed < time.Duration(n-1)*frame-20*time.Millisecond {
					t.Errorf("%d frames in %v: not paced", n, elapsed)
				}
			})
		})
	}
}

func TestOggSourceLoopsAndPaces(t *testing.T) {
	shareOrStream(t, func(t *testing.T) {
		path := oggWithPackets(t, opusPackets(t, 3))
		const n = 8
		got := runSource(t, OggSource{Path: path}, n)
		for i, s := range got {
			if s.s.Duration != 20*time.Millisecond {
				t.Errorf("sample %d lasts %v", i, s.s.Duration)
			}
			if len(s.s.Data) == 0 || string(s.s.Data[:4]) == "Opus" {
				t.Errorf("sample %d is not an Opus packet", i)
			}
		}
		if elapsed := got[n-1].at.Sub(got[0].at); elapsed < (n-1)*20*time.Millisecond-10*time.Millisecond {
			t.Errorf("%d packets in %v: not paced", n, elapsed)
		}
	})
}

// Sources of one file share its samples, read once, until the file
// changes; a file read as one kind is not taken for the other.
func TestSourcesShareAClip(t *testing.T) {
	path := oggWithPackets(t, opusPackets(t, 3))
	first, err := sharedClip(path, "ogg", openOggFrames)
	if err != nil {
		t.Fatal(err)
	}
	again, err := sharedClip(path, "ogg", openOggFrames)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 3 || len(again) != 3 || &first[0] != &again[0] {
		t.Fatalf("a second source read the file again: %d and %d samples, shared %v", len(first), len(again), &first[0] == &again[0])
	}
	if _, err := sharedClip(path, "ivf", openIVFFrames); !errors.Is(err, ErrBadMedia) {
		t.Errorf("the Ogg file as IVF: %v", err)
	}
	if err := os.WriteFile(path, mustRead(t, oggWithPackets(t, opusPackets(t, 5))), 0o600); err != nil {
		t.Fatal(err)
	}
	changed, err := sharedClip(path, "ogg", openOggFrames)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 5 {
		t.Errorf("after the file changed: %d samples, want 5", len(changed))
	}
}

func TestSourceErrors(t *testing.T) {
	shareOrStream(t, func(t *testing.T) {
		ctx := context.Background()
		if err := (IVFSource{Path: "missing.ivf"}).Run(ctx, newSampleRecorder(1)); !errors.Is(err, ErrBadMedia) {
			t.Errorf("missing ivf: %v", err)
		}
		if err := (OggSource{Path: clipIVF}).Run(ctx, newSampleRecorder(1)); !errors.Is(err, ErrBadMedia) {
			t.Errorf("ivf as ogg: %v", err)
		}
		empty := writeFile(t, "empty.ivf", ivfHeader("VP80"))
		if err := (IVFSource{Path: empty}).Run(ctx, newSampleRecorder(1)); !errors.Is(err, ErrBadMedia) {
			t.Errorf("ivf without frames: %v", err)
		}
	})
}

// panicSink panics on every packet, like a buggy writer meeting a crafted
// packet.
type panicSink struct{ closed bool }

func (p *panicSink) WriteRTP(*rtp.Packet) error { panic("boom") }
func (p *panicSink) Close() error               { p.closed = true; return nil }

func vp8Packet(seq uint16, marker bool, payload ...byte) *rtp.Packet {
	return &rtp.Packet{
		Header:  rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 6000, Marker: marker},
		Payload: payload,
	}
}

func TestRecorderSurvivesBadInput(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	path := filepath.Join(dir, "v.ivf")
	snk, file, err := newVideoRecorder(path)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{sink: snk, file: file, path: path, log: log}
	// A descriptor without payload makes pion's ivfwriter index out of range.
	rec.write(vp8Packet(1, true, 0x10))
	rec.write(vp8Packet(2, true))       // empty payload
	rec.write(vp8Packet(3, true, 0x80)) // truncated extended descriptor
	key := mustFirstFrame(t)
	rec.write(vp8Packet(4, true, append([]byte{0x10}, key...)...))
	if rec.done || rec.bad != 2 {
		t.Fatalf("recorder state done=%v bad=%d, want going with 2 bad packets", rec.done, rec.bad)
	}
	rec.close()
	rec.close()
	if n := countIVF(t, path); n != 1 {
		t.Fatalf("%d frames recorded, want 1", n)
	}
	if f, err := os.Open(path); err == nil {
		_, h, err := ivfreader.NewWith(f)
		_ = f.Close()
		if err != nil || h.Width != 320 || h.Height != 240 {
			t.Fatalf("recorded IVF header %+v, %v; want the keyframe's 320x240", h, err)
		}
	}

	ps := &panicSink{}
	rec = &recorder{sink: ps, path: "panic", log: log}
	rec.write(vp8Packet(1, true, 0x10, 0))
	if !rec.done || !ps.closed {
		t.Fatal("a panicking writer should stop and close the recording")
	}
	rec.write(vp8Packet(2, true, 0x10, 0)) // ignored, no panic

	// A disk error stops the recording; close still releases the file.
	path = filepath.Join(dir, "broken.ogg")
	snk, file, err = newAudioRecorder(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	rec = &recorder{sink: snk, file: file, path: path, log: log}
	_ = file.f.Close() // the disk goes away
	rec.write(&rtp.Packet{Header: rtp.Header{SSRC: 1}, Payload: opusPackets(t, 1)[0]})
	if !rec.done {
		t.Fatal("an I/O error should stop the recording")
	}
	if file.ioErr() == nil {
		t.Fatal("recFile did not keep the I/O error")
	}
	rec.close()
}

func mustFirstFrame(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open(clipIVF)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := ivfreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	frame, _, err := r.ParseNextFrame()
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return frame
}
