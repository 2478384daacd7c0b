package mediatest

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// The clips every peer plays in a loop: 3 s of ffmpeg's testsrc as VP8 (320x240, 30 fps, one
// keyframe at the start) and 3 s of a 440 Hz tone as Opus (48 kHz, 20 ms per Ogg page):
//
//	ffmpeg -f lavfi -i testsrc=size=320x240:rate=30 -t 3 -c:v libvpx -b:v 300k -g 90 \
//	  -auto-alt-ref 0 -lag-in-frames 0 -deadline realtime -cpu-used 8 -error-resilient 1 video.ivf
//	ffmpeg -f lavfi -i sine=frequency=440:sample_rate=48000:duration=3 -c:a libopus -b:a 32k \
//	  -page_duration 20000 audio.ogg
//
// One keyframe per loop makes keyframe requests matter: a new subscriber decodes quickly only
// if the publisher answers the SFU's PLI (see Peer.pumpVideo).
var (
	//go:embed testdata/video.ivf
	videoIVF []byte
	//go:embed testdata/audio.ogg
	audioOgg []byte
)

// SyntheticVideo describes generated VP8 frames for load tests: a camera of any bitrate
// without an encoder. The frames are noise behind a valid VP8 frame tag, so an SFU forwards
// them and a receiver can tell keyframes from delta frames, but they do not decode into
// pictures. At 2.5 Mbit/s and 30 frames/s (a 720p camera) each frame is about 10 kB, which
// Pion cuts into RTP packets of at most 1200 bytes: about 280 packets/s.
type SyntheticVideo struct {
	Bitrate int // bits per second, 100 kbit/s to 20 Mbit/s
	FPS     int // frames per second, 1 to 60
}

type syntheticVideo struct {
	key, delta    []byte
	frameDuration time.Duration
}

func newSyntheticVideo(cfg SyntheticVideo) (*syntheticVideo, error) {
	if cfg.Bitrate < 100_000 || cfg.Bitrate > 20_000_000 {
		return nil, fmt.Errorf("mediatest: synthetic video bitrate %d: want 100000..20000000", cfg.Bitrate)
	}
	if cfg.FPS < 1 || cfg.FPS > 60 {
		return nil, fmt.Errorf("mediatest: synthetic video frame rate %d: want 1..60", cfg.FPS)
	}
	size := cfg.Bitrate / 8 / cfg.FPS
	noise := rand.New(rand.NewPCG(1, 2))
	frame := func(keyframe bool) []byte {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(noise.Uint32())
		}
		// Frame tag (RFC 6386, 9.1): bit 0 is 0 for a keyframe; show_frame set. Keyframes
		// carry the start code and a 1280x720 size after the tag.
		b[0] = 0x10
		if !keyframe {
			b[0] |= 0x01
		} else {
			copy(b[3:], []byte{0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02})
		}
		return b
	}
	return &syntheticVideo{
		key:           frame(true),
		delta:         frame(false),
		frameDuration: time.Second / time.Duration(cfg.FPS),
	}, nil
}

// opusFrameDuration is the duration of each Opus packet in audio.ogg.
const opusFrameDuration = 20 * time.Millisecond

type videoClip struct {
	frames        [][]byte
	frameDuration time.Duration
	// keyframeAtOrBefore[i] is the index of the last keyframe at or before frame i, where a
	// decoder can restart.
	keyframeAtOrBefore []int
}

func loadVideo() (*videoClip, error) {
	r, header, err := ivfreader.NewWith(bytes.NewReader(videoIVF))
	if err != nil {
		return nil, fmt.Errorf("mediatest: video clip: %w", err)
	}
	if header.FourCC != "VP80" {
		return nil, fmt.Errorf("mediatest: video clip is %q, want VP80", header.FourCC)
	}
	if header.TimebaseDenominator == 0 || header.TimebaseNumerator == 0 {
		return nil, errors.New("mediatest: video clip has no frame rate")
	}
	clip := &videoClip{
		frameDuration: time.Second * time.Duration(header.TimebaseNumerator) / time.Duration(header.TimebaseDenominator),
	}
	lastKey := -1
	for {
		frame, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("mediatest: video clip: %w", err)
		}
		if isVP8KeyframeData(frame) {
			lastKey = len(clip.frames)
		}
		if lastKey < 0 {
			return nil, errors.New("mediatest: video clip does not start with a keyframe")
		}
		clip.frames = append(clip.frames, frame)
		clip.keyframeAtOrBefore = append(clip.keyframeAtOrBefore, lastKey)
	}
	if len(clip.frames) == 0 {
		return nil, errors.New("mediatest: video clip is empty")
	}
	return clip, nil
}

func loadAudio() ([][]byte, error) {
	r, _, err := oggreader.NewWith(bytes.NewReader(audioOgg))
	if err != nil {
		return nil, fmt.Errorf("mediatest: audio clip: %w", err)
	}
	var packets [][]byte
	for {
		page, header, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("mediatest: audio clip: %w", err)
		}
		if _, isHeader := header.HeaderType(page); isHeader || len(page) == 0 {
			continue // OpusTags
		}
		packets = append(packets, page)
	}
	if len(packets) == 0 {
		return nil, errors.New("mediatest: audio clip is empty")
	}
	return packets, nil
}

// isVP8KeyframeData reports whether a VP8 frame (not an RTP payload) is a keyframe: bit 0 of
// the frame tag is 0 (RFC 6386, section 9.1).
func isVP8KeyframeData(frame []byte) bool {
	return len(frame) > 0 && frame[0]&0x01 == 0
}

// isVP8KeyframePacket reports whether an RTP payload starts a VP8 keyframe, reading the VP8
// payload descriptor (RFC 7741, section 4.2) without allocating.
func isVP8KeyframePacket(payload []byte) bool {
	if len(payload) == 0 {
		return false
	}
	first := payload[0]
	startOfPartition := first&0x10 != 0
	partitionID := first & 0x07
	if !startOfPartition || partitionID != 0 {
		return false
	}
	i := 1
	if first&0x80 != 0 { // X: extension byte follows
		if len(payload) <= i {
			return false
		}
		ext := payload[i]
		i++
		if ext&0x80 != 0 { // I: picture ID, 7 or 15 bits
			if len(payload) <= i {
				return false
			}
			if payload[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if ext&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if ext&0x30 != 0 { // T or K: TID/Y/KEYIDX
			i++
		}
	}
	return len(payload) > i && isVP8KeyframeData(payload[i:])
}
