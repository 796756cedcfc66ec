package media

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// CheckVideoFile reports whether path is an IVF file of VP8 that starts with a
// keyframe, as IVFSource needs. The error (wrapping ErrBadMedia, and the
// os error if the file cannot be opened) is one line naming the problem.
func CheckVideoFile(path string) error {
	if err := checkVideo(path); err != nil {
		return fmt.Errorf("%w: video file %q: %w", ErrBadMedia, path, err)
	}
	return nil
}

func checkVideo(path string) error {
	f, err := os.Open(path) //nolint:gosec // the path is configuration
	if err != nil {
		return unwrapPathError(err)
	}
	defer func() { _ = f.Close() }()
	r, h, err := ivfreader.NewWith(f)
	if err != nil {
		return fmt.Errorf("not an IVF file (%v)", err)
	}
	if h.FourCC != "VP80" {
		return fmt.Errorf("codec is %q, want VP80 (VP8)", h.FourCC)
	}
	frame, _, err := r.ParseNextFrame()
	switch {
	case errors.Is(err, io.EOF):
		return errors.New("no frames")
	case err != nil:
		return fmt.Errorf("first frame: %v", err)
	case !isVP8KeyframeData(frame):
		return errors.New("first frame is not a VP8 keyframe")
	}
	return nil
}

// isVP8KeyframeData reports whether a VP8 frame (RFC 6386, 9.1) is a keyframe
// with a valid start code.
func isVP8KeyframeData(b []byte) bool {
	return len(b) >= 10 && b[0]&1 == 0 && b[3] == 0x9d && b[4] == 0x01 && b[5] == 0x2a
}

// CheckAudioFile reports whether path is an Ogg file of Opus (mono or stereo)
// with one Opus packet per page, as OggSource needs. The error (wrapping
// ErrBadMedia, and the os error if the file cannot be opened) is one line
// naming the problem.
func CheckAudioFile(path string) error {
	if err := checkAudio(path); err != nil {
		return fmt.Errorf("%w: audio file %q: %w", ErrBadMedia, path, err)
	}
	return nil
}

func checkAudio(path string) error {
	f, err := os.Open(path) //nolint:gosec // the path is configuration
	if err != nil {
		return unwrapPathError(err)
	}
	defer func() { _ = f.Close() }()
	r, h, err := oggreader.NewWith(f)
	if err != nil {
		return fmt.Errorf("not an Ogg Opus file (%v)", err)
	}
	if h.Channels == 0 || h.Channels > 2 {
		return fmt.Errorf("%d channels, want 1 or 2", h.Channels)
	}
	// Look at the first three audio pages: each must be one valid Opus packet.
	type page struct {
		granule uint64
		samples int
	}
	var pages []page
	for len(pages) < 3 {
		data, ph, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("audio page %d: %v", len(pages)+1, err)
		}
		if _, isHeader := ph.HeaderType(data); isHeader || len(data) == 0 {
			continue
		}
		n, err := opusSamples(data)
		if err != nil {
			return fmt.Errorf("audio page %d: %v", len(pages)+1, err)
		}
		pages = append(pages, page{ph.GranulePosition, n})
	}
	if len(pages) == 0 {
		return errors.New("no audio packets")
	}
	// The granule step from page 1 to 2 is page 2's duration; if it is more than
	// one packet, pages hold several packets. (The last page may be trimmed, so
	// only judge when a third page exists.)
	if len(pages) == 3 {
		const noGranule = ^uint64(0)
		p1, p2 := pages[0], pages[1]
		if p1.granule != noGranule && p2.granule != noGranule && p2.granule-p1.granule != uint64(p2.samples) {
			return fmt.Errorf("pages hold more than one Opus packet (page step %d samples, packet %d); remux with ffmpeg -page_duration set to the packet length in microseconds (20000 for 20 ms)",
				p2.granule-p1.granule, p2.samples)
		}
	}
	return nil
}

// unwrapPathError drops the path from an *os.PathError (the caller names the
// file already) but keeps the error chain, so errors.Is(err, fs.ErrNotExist)
// still works.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
