package media

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

func TestCheckClips(t *testing.T) {
	if err := CheckVideoFile(clipIVF); err != nil {
		t.Errorf("clip.ivf: %v", err)
	}
	if err := CheckAudioFile(clipOgg); err != nil {
		t.Errorf("clip.ogg: %v", err)
	}
}

// TestClipShape pins what testdata/README.md promises about the clips.
func TestClipShape(t *testing.T) {
	f, err := os.Open(clipIVF)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, h, err := ivfreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	if h.FourCC != "VP80" || h.Width != 320 || h.Height != 240 || h.TimebaseNumerator != 1 || h.TimebaseDenominator != 15 {
		t.Fatalf("clip.ivf header %+v", h)
	}
	frames, keyframes, lastKey := 0, 0, -1
	for {
		frame, _, err := r.ParseNextFrame()
		if err != nil {
			break
		}
		if isVP8KeyframeData(frame) {
			if lastKey >= 0 && frames-lastKey > 15 {
				t.Errorf("keyframes %d frames apart", frames-lastKey)
			}
			keyframes++
			lastKey = frames
		}
		frames++
	}
	if frames != 60 || keyframes < 4 {
		t.Fatalf("clip.ivf: %d frames, %d keyframes; want 60 frames (4 s at 15 fps), a keyframe a second", frames, keyframes)
	}

	for _, c := range []struct {
		path string
		dur  time.Duration
	}{{clipOgg, 20 * time.Millisecond}, {clipOgg60, 60 * time.Millisecond}} {
		if err := CheckAudioFile(c.path); err != nil {
			t.Error(err)
		}
		g, err := os.Open(c.path)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		frs, err := openOggFrames(g)
		if err != nil {
			t.Fatal(err)
		}
		packets := 0
		for {
			_, dur, err := frs.next()
			if err != nil {
				break
			}
			if dur != c.dur {
				t.Fatalf("%s: packet %d lasts %v, want %v", c.path, packets, dur, c.dur)
			}
			packets++
		}
		if want := int(4 * time.Second / c.dur); packets < want-5 || packets > want+5 {
			t.Fatalf("%s: %d packets of %v, want about %d (4 s)", c.path, packets, c.dur, want)
		}
	}
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func ivfHeader(fourcc string) []byte {
	h := make([]byte, 32)
	copy(h, "DKIF")
	binary.LittleEndian.PutUint16(h[6:], 32)
	copy(h[8:], fourcc)
	binary.LittleEndian.PutUint16(h[12:], 320)
	binary.LittleEndian.PutUint16(h[14:], 240)
	binary.LittleEndian.PutUint32(h[16:], 15)
	binary.LittleEndian.PutUint32(h[20:], 1)
	return h
}

func ivfFrame(pts uint64, data []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(data)))
	b = binary.LittleEndian.AppendUint64(b, pts)
	return append(b, data...)
}

func TestCheckVideoFile(t *testing.T) {
	clip, err := os.ReadFile(clipIVF)
	if err != nil {
		t.Fatal(err)
	}
	interframe := append([]byte{0x01}, make([]byte, 20)...)
	tests := []struct {
		name, want string
		data       []byte
	}{
		{"empty", "not an IVF file", nil},
		{"text", "not an IVF file", []byte(strings.Repeat("hello world\n", 10))},
		{"ogg", "not an IVF file", mustRead(t, clipOgg)},
		{"vp9", "codec is \"VP90\"", ivfHeader("VP90")},
		{"no frames", "no frames", ivfHeader("VP80")},
		{"cut frame", "first frame", append(ivfHeader("VP80"), ivfFrame(0, make([]byte, 100))[:50]...)},
		{"interframe first", "not a VP8 keyframe", append(ivfHeader("VP80"), ivfFrame(0, interframe)...)},
		{"cut header", "not an IVF file", clip[:20]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckVideoFile(writeFile(t, "v.ivf", tc.data))
			if !errors.Is(err, ErrBadMedia) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrBadMedia mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
	err = CheckVideoFile(filepath.Join(t.TempDir(), "missing.ivf"))
	if !errors.Is(err, ErrBadMedia) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	t.Logf("missing file: %v", err)
	if err := CheckVideoFile(t.TempDir()); !errors.Is(err, ErrBadMedia) {
		t.Fatalf("directory: %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// opusPackets returns the first n Opus packets of clip.ogg.
func opusPackets(t *testing.T, n int) [][]byte {
	t.Helper()
	f, err := os.Open(clipOgg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for len(out) < n {
		page, h, err := r.ParseNextPage()
		if err != nil {
			t.Fatal(err)
		}
		if _, isHeader := h.HeaderType(page); !isHeader {
			out = append(out, page)
		}
	}
	return out
}

// oggWithPackets writes packets with pion's oggwriter: one packet per page.
func oggWithPackets(t *testing.T, packets [][]byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "a.ogg")
	w, err := oggwriter.New(p, 48000, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, pkt := range packets {
		if err := w.WriteRTP(&rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i), Timestamp: uint32(960 * i)}, Payload: pkt}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// oggPage builds one Ogg page (RFC 3533) holding the given packets.
func oggPage(headerType byte, granule uint64, serial, seq uint32, packets ...[]byte) []byte {
	var segs, body []byte
	for _, p := range packets {
		n := len(p)
		for n >= 255 {
			segs = append(segs, 255)
			n -= 255
		}
		segs = append(segs, byte(n))
		body = append(body, p...)
	}
	page := []byte("OggS\x00")
	page = append(page, headerType)
	page = binary.LittleEndian.AppendUint64(page, granule)
	page = binary.LittleEndian.AppendUint32(page, serial)
	page = binary.LittleEndian.AppendUint32(page, seq)
	page = append(page, 0, 0, 0, 0, byte(len(segs)))
	page = append(page, segs...)
	page = append(page, body...)
	var crc uint32
	for _, b := range page {
		crc = (crc << 8) ^ oggCRCTable[byte(crc>>24)^b]
	}
	binary.LittleEndian.PutUint32(page[22:], crc)
	return page
}

var oggCRCTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

func opusHead(channels byte) []byte {
	h := []byte("OpusHead\x01")
	h = append(h, channels)
	h = binary.LittleEndian.AppendUint16(h, 312)
	h = binary.LittleEndian.AppendUint32(h, 48000)
	return append(h, 0, 0, 0)
}

func TestCheckAudioFile(t *testing.T) {
	pkts := opusPackets(t, 9)
	tags := []byte("OpusTags\x04\x00\x00\x00test\x00\x00\x00\x00")
	// Three packets to a page, as ffmpeg writes with its default 1 s pages.
	bigPages := oggPage(2, 0, 7, 0, opusHead(1))
	bigPages = append(bigPages, oggPage(0, 0, 7, 1, tags)...)
	bigPages = append(bigPages, oggPage(0, 2880, 7, 2, pkts[0:3]...)...)
	bigPages = append(bigPages, oggPage(0, 5760, 7, 3, pkts[3:6]...)...)
	bigPages = append(bigPages, oggPage(4, 8640, 7, 4, pkts[6:9]...)...)
	if err := CheckAudioFile(writeFile(t, "big.ogg", bigPages)); err == nil || !strings.Contains(err.Error(), "more than one Opus packet") {
		t.Errorf("multi-packet pages: %v", err)
	}
	// The same packets one per page pass.
	if err := CheckAudioFile(oggWithPackets(t, pkts)); err != nil {
		t.Errorf("one packet per page: %v", err)
	}

	tests := []struct {
		name, want string
		data       []byte
	}{
		{"empty", "not an Ogg Opus file", nil},
		{"text", "not an Ogg Opus file", []byte(strings.Repeat("hello world\n", 10))},
		{"ivf", "not an Ogg Opus file", mustRead(t, clipIVF)},
		{"headers only", "no audio packets", append(oggPage(2, 0, 1, 0, opusHead(1)), oggPage(4, 0, 1, 1, tags)...)},
		{"six channels", "6 channels", oggPage(2, 0, 1, 0, opusHead(6))},
		{"bad crc", "not an Ogg Opus file", func() []byte { p := oggPage(2, 0, 1, 0, opusHead(1)); p[30] ^= 1; return p }()},
		{"bad packet", "audio page 1", append(oggPage(2, 0, 1, 0, opusHead(1)), oggPage(0, 960, 1, 1, []byte{0x03})...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckAudioFile(writeFile(t, "a.ogg", tc.data))
			if !errors.Is(err, ErrBadMedia) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrBadMedia mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
	if err := CheckAudioFile(filepath.Join(t.TempDir(), "missing.ogg")); !errors.Is(err, ErrBadMedia) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestOpusSamples(t *testing.T) {
	tests := []struct {
		p    []byte
		want int
	}{
		{[]byte{0x78}, 960},        // config 15 hybrid 20 ms, one frame
		{[]byte{0xf8}, 960},        // CELT FB 20 ms
		{[]byte{0x80}, 120},        // CELT 2.5 ms
		{[]byte{0x18}, 2880},       // SILK 60 ms
		{[]byte{0x79}, 1920},       // two frames
		{[]byte{0x7b, 0x03}, 2880}, // code 3, three frames
		{[]byte{0x1b, 0x03}, -1},   // 3 x 60 ms = 180 ms: too long
		{[]byte{0x7b}, -1},         // code 3 without count
		{[]byte{0x7b, 0x00}, -1},   // zero frames
		{nil, -1},
	}
	for _, tc := range tests {
		got, err := opusSamples(tc.p)
		if tc.want < 0 {
			if err == nil {
				t.Errorf("opusSamples(% x) = %d, want error", tc.p, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("opusSamples(% x) = %d, %v; want %d", tc.p, got, err, tc.want)
		}
	}
}
