package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/ivfwriter"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// A sink consumes the RTP packets of one remote track. pion's ivfwriter and
// oggwriter are sinks.
type sink interface {
	WriteRTP(*rtp.Packet) error
	Close() error
}

// recFile is the file under a recording. It remembers the first I/O error, so
// the recorder can tell a broken disk (stop recording) from a bad packet (skip
// it), and fails every later write at once so a half-written file is not made
// worse.
type recFile struct {
	mu     sync.Mutex
	f      *os.File
	err    error
	closed bool
}

func createRecFile(path string) (*recFile, error) {
	f, err := os.Create(path) //nolint:gosec // the path is configuration
	if err != nil {
		return nil, err
	}
	return &recFile{f: f}, nil
}

func (r *recFile) ioErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *recFile) do(op func() (int, error)) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	n, err := op()
	if err != nil {
		r.err = err
	}
	return n, err
}

func (r *recFile) Write(p []byte) (int, error) {
	return r.do(func() (int, error) { return r.f.Write(p) })
}

func (r *recFile) WriteAt(p []byte, off int64) (int, error) {
	return r.do(func() (int, error) { return r.f.WriteAt(p, off) })
}

func (r *recFile) Seek(offset int64, whence int) (int64, error) {
	var pos int64
	_, err := r.do(func() (int, error) {
		var err error
		pos, err = r.f.Seek(offset, whence)
		return 0, err
	})
	return pos, err
}

// Close closes the file; later calls do nothing.
func (r *recFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return r.f.Close()
}

var (
	_ io.WriteSeeker = (*recFile)(nil)
	_ io.WriterAt    = (*recFile)(nil)
)

// newVideoRecorder records VP8 to an IVF file with a 1/90000 timebase, so the
// RTP timestamps are kept exactly. The header's picture size is filled in from
// the first keyframe.
func newVideoRecorder(path string) (sink, *recFile, error) {
	f, err := createRecFile(path)
	if err != nil {
		return nil, nil, err
	}
	w, err := ivfwriter.NewWith(f,
		ivfwriter.WithCodec(webrtc.MimeTypeVP8),
		ivfwriter.WithFrameRate(1, 90000),
		ivfwriter.WithDirectPTS(),
	)
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return &vp8Sink{sink: w, file: f}, f, nil
}

// vp8Sink guards pion's ivfwriter: it drops VP8 packets whose payload is only
// a descriptor (ivfwriter would index past their end and panic), and it
// writes the picture size of the first keyframe into the IVF header.
type vp8Sink struct {
	sink
	file   *recFile
	sized  bool
	header [4]byte
}

var errEmptyVP8 = errors.New("VP8 packet without payload")

func (v *vp8Sink) WriteRTP(p *rtp.Packet) error {
	if len(p.Payload) == 0 {
		return v.sink.WriteRTP(p) // ivfwriter skips it
	}
	var vp8 codecs.VP8Packet
	if _, err := vp8.Unmarshal(p.Payload); err != nil {
		return err
	}
	if len(vp8.Payload) == 0 {
		return errEmptyVP8
	}
	if !v.sized && vp8.S == 1 && vp8.PID == 0 && isVP8KeyframeData(vp8.Payload) {
		// RFC 6386 9.1: 14-bit width and height (plus scale bits) at bytes 6-9.
		v.sized = true
		w := binary.LittleEndian.Uint16(vp8.Payload[6:]) & 0x3fff
		h := binary.LittleEndian.Uint16(vp8.Payload[8:]) & 0x3fff
		binary.LittleEndian.PutUint16(v.header[0:], w)
		binary.LittleEndian.PutUint16(v.header[2:], h)
		if _, err := v.file.WriteAt(v.header[:], 12); err != nil { // IVF header: width, height
			return err
		}
	}
	return v.sink.WriteRTP(p)
}

// newAudioRecorder records Opus to an Ogg file (48 kHz, 2 channels, as Opus
// over RTP is always described). Close marks the last page end-of-stream.
func newAudioRecorder(path string, ssrc uint32) (sink, *recFile, error) {
	f, err := createRecFile(path)
	if err != nil {
		return nil, nil, err
	}
	w, err := oggwriter.NewWriter(f, oggwriter.WithSeekableOutput(f))
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	t, err := w.NewTrack(ssrc)
	if err != nil {
		_ = w.Close()
		return nil, nil, err
	}
	return oggSink{t, w}, f, nil
}

type oggSink struct {
	t *oggwriter.Track
	w *oggwriter.Writer
}

func (s oggSink) WriteRTP(p *rtp.Packet) error { return s.t.WriteRTP(p) }
func (s oggSink) Close() error                 { return s.w.Close() }

// recorder feeds one remote track into a sink. A bad packet is skipped (the
// first is logged); an I/O error or a panic in the writer stops the recording
// (logged once) and closes it, so what was written stays a valid file. It
// never panics and never blocks on anything but the local file.
type recorder struct {
	sink   sink
	file   *recFile // nil for sinks that are not files
	path   string
	log    *slog.Logger
	done   bool
	bad    uint64
	closed bool
}

func (r *recorder) write(p *rtp.Packet) {
	if r == nil || r.done {
		return
	}
	err, panicked := r.safeWrite(p)
	if err == nil {
		return
	}
	if panicked || (r.file != nil && r.file.ioErr() != nil) {
		r.log.Warn("recording stopped", "file", r.path, "err", err)
		r.done = true
		r.close()
		return
	}
	r.bad++
	if r.bad == 1 {
		r.log.Debug("recording skipped a bad packet", "file", r.path, "err", err)
	}
}

func (r *recorder) safeWrite(p *rtp.Packet) (err error, panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			err, panicked = fmt.Errorf("writer panicked: %v", v), true
		}
	}()
	return r.sink.WriteRTP(p), false
}

// close finalises the file (frame count, end-of-stream page). Idempotent.
func (r *recorder) close() {
	if r == nil || r.closed {
		return
	}
	r.closed = true
	defer func() {
		if v := recover(); v != nil {
			r.log.Warn("closing recording panicked", "file", r.path, "panic", v)
			if r.file != nil {
				_ = r.file.Close()
			}
		}
	}()
	if err := r.sink.Close(); err != nil {
		r.log.Warn("closing recording", "file", r.path, "err", err)
	}
	if r.file != nil {
		// The writers close the file only when their finalising writes worked.
		_ = r.file.Close()
	}
}
