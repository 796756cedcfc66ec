#!/bin/sh
# Regenerates the media test clips in this directory with Debian's ffmpeg
# (tested with ffmpeg 5.1, libvpx and libopus). Run from anywhere:
#   sh testdata/make-clips.sh
# Output is not bit-for-bit reproducible across ffmpeg/libvpx/libopus versions,
# but it is always the same shape (see README.md).
set -eu
cd "$(dirname "$0")"

# clip.ivf: VP8, 320x240, 15 fps, 4 s (60 frames), a keyframe every 15 frames
# (1 s), realtime encoder deadline, ~200 kbit/s, no alt-ref frames (-auto-alt-ref 0,
# -lag-in-frames 0) so every IVF frame is one displayable frame, as a camera sends.
ffmpeg -hide_banner -loglevel error -y \
	-f lavfi -i "testsrc=size=320x240:rate=15:duration=4" \
	-c:v libvpx -deadline realtime -cpu-used 8 \
	-b:v 200k -minrate 200k -maxrate 200k -bufsize 200k \
	-g 15 -keyint_min 15 -auto-alt-ref 0 -lag-in-frames 0 \
	-pix_fmt yuv420p -an -f ivf clip.ivf

# clip.ogg: Opus, 48 kHz mono, 4 s 440 Hz sine, 20 ms frames, one Opus packet per
# Ogg page (-page_duration 20000 us), so each page is one RTP packet's worth.
ffmpeg -hide_banner -loglevel error -y \
	-f lavfi -i "sine=frequency=440:sample_rate=48000:duration=4" \
	-c:a libopus -b:a 32k -frame_duration 20 -application audio \
	-ar 48000 -ac 1 -page_duration 20000 -vn -f ogg clip.ogg

# clip-60ms.ogg: the same tone in 60-ms Opus packets, one per page: the
# harness's microphone, a third of a browser's audio packets (see README.md).
ffmpeg -hide_banner -loglevel error -y \
	-f lavfi -i "sine=frequency=440:sample_rate=48000:duration=4" \
	-c:a libopus -b:a 32k -frame_duration 60 -application audio \
	-ar 48000 -ac 1 -page_duration 60000 -vn -f ogg clip-60ms.ogg

ls -l clip.ivf clip.ogg clip-60ms.ogg
