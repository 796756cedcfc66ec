package media

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	pmedia "github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// SampleWriter takes encoded media samples. *webrtc.TrackLocalStaticSample is
// one.
type SampleWriter interface {
	WriteSample(pmedia.Sample) error
}

// A Source produces encoded media for one local track: VP8 frames for video,
// Opus packets for audio.
type Source interface {
	// Run writes samples to w, paced in real time, until ctx is done, and then
	// returns nil; it returns early only on an error it cannot get past (the
	// file cannot be read). Errors from w are not fatal: Run goes on.
	Run(ctx context.Context, w SampleWriter) error
}

// maxLag is how far a source may fall behind its schedule (a stalled machine)
// before it stops trying to catch up and restarts its clock, so it never
// bursts seconds of media at once.
const maxLag = 500 * time.Millisecond

// IVFSource loops an IVF VP8 file forever as a camera, each frame paced by the
// file's own timestamps. Every Run looks at the file again (see loopFile).
type IVFSource struct{ Path string }

// Run implements Source.
func (s IVFSource) Run(ctx context.Context, w SampleWriter) error {
	return loopFile(ctx, s.Path, "ivf", w, openIVFFrames)
}

// OggSource loops an Ogg Opus file forever as a microphone. It sends each Ogg
// page as one Opus packet, so the file needs one packet per page (ffmpeg
// -page_duration as long as a packet; CheckAudioFile tells), paced by the
// packet's own duration. Every Run looks at the file again (see loopFile).
type OggSource struct{ Path string }

// Run implements Source.
func (s OggSource) Run(ctx context.Context, w SampleWriter) error {
	return loopFile(ctx, s.Path, "ogg", w, openOggFrames)
}

// fileBuffer is the read buffer of a looping source.
const fileBuffer = 32 << 10

// frameReader yields the samples of one pass over a file; io.EOF ends the pass.
type frameReader interface {
	next() (data []byte, dur time.Duration, err error)
}

// loopFile plays the file at path to w from the start, again and again, until
// ctx is done. Sample timestamps run on across loops (the track's own
// packetizer numbers them), so the partner sees one continuous stream. A
// file up to maxSharedClip is read once and its samples shared by every
// source that plays it (sharedClip); a larger one is read as it plays.
func loopFile(ctx context.Context, path, kind string, w SampleWriter, open func(io.Reader) (frameReader, error)) error {
	samples, err := sharedClip(path, kind, open)
	if err != nil {
		return err
	}
	// pass starts one pass over the file.
	pass := func() (frameReader, error) { return &sampleFrames{samples: samples}, nil }
	if samples == nil {
		f, err := os.Open(path) //nolint:gosec // the path is configuration
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadMedia, err)
		}
		defer func() { _ = f.Close() }()
		// The readers read a page or frame header, then its body: buffered, a
		// pass over a clip is a few reads instead of three system calls per
		// Opus packet (at 200 nodes with file media, reading the clips was
		// 3.7 % of the harness's CPU, 2.3 % in read system calls).
		buf := bufio.NewReaderSize(f, fileBuffer)
		pass = func() (frameReader, error) {
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return nil, err
			}
			buf.Reset(f)
			return open(buf)
		}
	}

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	due := time.Now()
	for {
		frames, err := pass()
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrBadMedia, path, err)
		}
		sent := 0
		for {
			data, dur, err := frames.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("%w: %s: %w", ErrBadMedia, path, err)
			}
			if wait := time.Until(due); wait > 0 {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
					return nil
				case <-timer.C:
				}
			} else if -wait > maxLag {
				due = time.Now()
			}
			if ctx.Err() != nil {
				return nil
			}
			_ = w.WriteSample(pmedia.Sample{Data: data, Duration: dur})
			due = due.Add(dur)
			sent++
		}
		if sent == 0 {
			return fmt.Errorf("%w: %s: no frames", ErrBadMedia, path)
		}
	}
}

// sampleFrames is one pass over a clip read whole.
type sampleFrames struct {
	samples []pmedia.Sample
	i       int
}

func (s *sampleFrames) next() ([]byte, time.Duration, error) {
	if s.i == len(s.samples) {
		return nil, 0, io.EOF
	}
	smp := s.samples[s.i]
	s.i++
	return smp.Data, smp.Duration, nil
}

// maxSharedClip is the largest file whose samples are kept in memory and
// shared: the clips of tests, bots and the harness are well under it. (A
// variable for the tests.)
var maxSharedClip int64 = 8 << 20

// clips holds the samples of the files read whole, by kind and path; an
// entry is read again when its file's size or modification time changes
// (one entry per file ever played: a node plays one or two). pion's
// payloaders copy a sample's data, so the samples are shared read-only.
// (At 200 nodes with file media, parsing the Ogg clip again on every loop
// was 1.9 % of the harness's CPU.)
var clips = struct {
	sync.Mutex
	m map[clipKey]clipEntry
}{m: map[clipKey]clipEntry{}}

type clipKey struct{ kind, path string }

type clipEntry struct {
	size    int64
	mod     time.Time
	samples []pmedia.Sample
}

// sharedClip returns every sample of one pass over the file at path, read
// once with open and shared by every source of that kind ("ivf", "ogg"), or
// nil samples and no error for a file larger than maxSharedClip (to be read
// as it plays).
func sharedClip(path, kind string, open func(io.Reader) (frameReader, error)) ([]pmedia.Sample, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMedia, err)
	}
	if fi.Size() > maxSharedClip {
		return nil, nil
	}
	clips.Lock()
	defer clips.Unlock()
	key := clipKey{kind, path}
	if e, ok := clips.m[key]; ok && e.size == fi.Size() && e.mod.Equal(fi.ModTime()) {
		return e.samples, nil
	}
	data, err := os.ReadFile(path) //nolint:gosec // the path is configuration
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMedia, err)
	}
	frames, err := open(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadMedia, path, err)
	}
	var samples []pmedia.Sample
	for {
		d, dur, err := frames.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadMedia, path, err)
		}
		samples = append(samples, pmedia.Sample{Data: d, Duration: dur})
	}
	if len(samples) == 0 {
		return nil, fmt.Errorf("%w: %s: no frames", ErrBadMedia, path)
	}
	clips.m[key] = clipEntry{size: fi.Size(), mod: fi.ModTime(), samples: samples}
	return samples, nil
}

// ivfFrames reads VP8 frames with one frame of look-ahead, so each frame's
// duration is the gap to the next frame's timestamp; the last frame lasts as
// long as the one before it.
type ivfFrames struct {
	r        *ivfreader.IVFReader
	num, den float64 // timebase: one pts unit is num/den seconds
	fallback time.Duration

	pending   []byte
	pendingTS uint64
	have, eof bool
	lastDur   time.Duration // the last gap seen, for the last frame
}

func openIVFFrames(in io.Reader) (frameReader, error) {
	r, h, err := ivfreader.NewWith(in)
	if err != nil {
		return nil, err
	}
	if h.FourCC != "VP80" {
		return nil, fmt.Errorf("codec %q is not VP8", h.FourCC)
	}
	fr := &ivfFrames{r: r, num: float64(h.TimebaseNumerator), den: float64(h.TimebaseDenominator)}
	fr.fallback = time.Second / 30
	if period := time.Duration(fr.num / fr.den * float64(time.Second)); period >= time.Millisecond && period <= time.Second {
		fr.fallback = period // one pts unit is one frame, as in ffmpeg's IVF output
	}
	return fr, nil
}

func (fr *ivfFrames) read() ([]byte, uint64, error) {
	data, h, err := fr.r.ParseNextFrame()
	if err != nil {
		return nil, 0, err
	}
	return data, h.Timestamp, nil
}

func (fr *ivfFrames) next() ([]byte, time.Duration, error) {
	if fr.eof {
		return nil, 0, io.EOF
	}
	if !fr.have {
		data, ts, err := fr.read()
		if err != nil {
			return nil, 0, err
		}
		fr.pending, fr.pendingTS, fr.have = data, ts, true
	}
	cur, curTS := fr.pending, fr.pendingTS
	data, ts, err := fr.read()
	switch {
	case errors.Is(err, io.EOF):
		fr.eof = true
		if fr.lastDur > 0 {
			return cur, fr.lastDur, nil
		}
		return cur, fr.fallback, nil
	case err != nil:
		return nil, 0, err
	}
	fr.pending, fr.pendingTS = data, ts
	fr.lastDur = fr.frameDuration(curTS, ts)
	return cur, fr.lastDur, nil
}

// frameDuration turns the gap between two ivfreader timestamps into time.
// ivfreader reports pts*den/num, so the gap in seconds is gap*(num/den)^2.
func (fr *ivfFrames) frameDuration(from, to uint64) time.Duration {
	if to <= from {
		return fr.fallback
	}
	k := fr.num / fr.den
	d := time.Duration(float64(to-from) * k * k * float64(time.Second))
	if d <= 0 || d > 5*time.Second {
		return fr.fallback
	}
	return d
}

// oggFrames reads Opus packets, one per Ogg page, skipping the header pages.
type oggFrames struct{ r *oggreader.OggReader }

func openOggFrames(in io.Reader) (frameReader, error) {
	r, h, err := oggreader.NewWith(in)
	if err != nil {
		return nil, err
	}
	if h.Channels == 0 || h.Channels > 2 {
		return nil, fmt.Errorf("%d channels, want 1 or 2", h.Channels)
	}
	return &oggFrames{r: r}, nil
}

func (fr *oggFrames) next() ([]byte, time.Duration, error) {
	for {
		page, h, err := fr.r.ParseNextPage()
		if err != nil {
			return nil, 0, err
		}
		if _, isHeader := h.HeaderType(page); isHeader || len(page) == 0 {
			continue
		}
		samples, err := opusSamples(page)
		if err != nil {
			return nil, 0, err
		}
		return page, time.Duration(samples) * time.Second / opusRate, nil
	}
}

const opusRate = 48000

var errBadOpus = errors.New("invalid Opus packet")

// opusSamples is the duration, in 48 kHz samples, of one Opus packet, read
// from its TOC byte (RFC 6716, section 3.1).
func opusSamples(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, errBadOpus
	}
	toc := p[0]
	config := int(toc >> 3)
	var perFrame int // in units of 2.5 ms = 120 samples
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		perFrame = [4]int{4, 8, 16, 24}[config&3]
	case config < 16: // hybrid: 10, 20 ms
		perFrame = [2]int{4, 8}[config&1]
	default: // CELT: 2.5, 5, 10, 20 ms
		perFrame = [4]int{1, 2, 4, 8}[config&3]
	}
	frames := 1
	switch toc & 3 {
	case 1, 2:
		frames = 2
	case 3:
		if len(p) < 2 {
			return 0, errBadOpus
		}
		frames = int(p[1] & 0x3f)
	}
	samples := perFrame * 120 * frames
	if frames == 0 || samples > opusRate*120/1000 {
		return 0, errBadOpus
	}
	return samples, nil
}
