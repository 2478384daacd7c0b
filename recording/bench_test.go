package recording

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
)

// benchSeconds is the media time one benchmark op records.
const benchSeconds = 30

// stream is the RTP of one participant, in arrival order, as a recorder's tap sees it.
type stream struct {
	pkts    []inPacket
	payload int64 // RTP payload bytes
	media   time.Duration
}

func (s *stream) add(video videoCodec, pkts []*rtp.Packet) {
	for _, p := range pkts {
		s.pkts = append(s.pkts, inPacket{video: video, pkt: p})
		s.payload += int64(len(p.Payload))
	}
}

// mix packetizes video frames (one every frame seconds; nil frames means no video) and the
// Opus clip in timestamp order for benchSeconds of media.
func mix(tb testing.TB, video videoCodec, frames func(i int) []byte, fps int) *stream {
	s := &stream{media: benchSeconds * time.Second}
	audio := readOpusClip(tb)
	ap := rtp.NewPacketizer(1200, 111, 2222, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)
	var vp rtp.Packetizer
	switch video {
	case codecVP8:
		vp = rtp.NewPacketizer(1200, 96, 1111, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
	case codecH264:
		vp = rtp.NewPacketizer(1200, 102, 1111, &codecs.H264Payloader{}, rtp.NewRandomSequencer(), 90000)
	}
	var vTime time.Duration
	for i, at := 0, time.Duration(0); at < s.media; i, at = i+1, at+20*time.Millisecond {
		for vp != nil && vTime <= at {
			s.add(video, vp.Packetize(frames(int(vTime*time.Duration(fps)/time.Second)), uint32(90000/fps)))
			vTime += time.Second / time.Duration(fps)
		}
		s.add(noVideo, ap.Packetize(audio[i%len(audio)], 960))
	}
	return s
}

// vp8Clip is mediatest's VP8 clip (3 s, 320x240, 30 fps, ≈200 kbit/s, one keyframe).
func vp8Clip(tb testing.TB) [][]byte {
	raw, err := os.ReadFile("../media/mediatest/testdata/video.ivf")
	if err != nil {
		tb.Fatal(err)
	}
	var frames [][]byte
	r, _, err := ivfreader.NewWith(bytes.NewReader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	for {
		f, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		frames = append(frames, f)
	}
	return frames
}

// synthH264 makes frames of a 1280x720 camera at about bitrate: the SPS and PPS of a real
// 720p stream, an IDR every keyEvery frames and P slices in between, with random slice data
// (the recorder does not decode, so only sizes and NAL headers matter).
func synthH264(bitrate, fps, keyEvery int) func(i int) []byte {
	sps := []byte{0x67, 0x4d, 0x40, 0x1f, 0xec, 0xa0, 0x28, 0x02, 0xdd, 0x80, 0x88, 0x00, 0x00, 0x03, 0x00, 0x08, 0x00, 0x00, 0x03, 0x01, 0xe0, 0x78, 0xc1, 0x8c, 0xb0}
	pps := []byte{0x68, 0xeb, 0xec, 0xb2, 0x2c}
	rng := rand.New(rand.NewPCG(3, 4))
	perFrame := bitrate / 8 / fps
	key := make([]byte, 4*perFrame)
	delta := make([]byte, perFrame*keyEvery/(keyEvery+3)) // the keyframe takes 4 frames' share
	for _, b := range [][]byte{key, delta} {
		for i := range b {
			b[i] = byte(rng.Uint32() | 1) // no start codes by accident
		}
	}
	key[0], delta[0] = 0x65, 0x41
	annexB := func(nals ...[]byte) []byte {
		var out []byte
		for _, n := range nals {
			out = append(append(out, 0, 0, 0, 1), n...)
		}
		return out
	}
	keyframe, deltaFrame := annexB(sps, pps, key), annexB(delta)
	return func(i int) []byte {
		if i%keyEvery == 0 {
			return keyframe
		}
		return deltaFrame
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRecord records 30 s of one participant's media per op: copying each packet as the
// tap does, depacketizing, writing 5 s segments and committing them (sync and rename) as in
// production, on one goroutine and without the SFU. It reports
//
//   - MB/cpu-s: RTP payload bytes recorded per CPU-second of the whole process (user+system
//     time from getrusage, so the WebM writer's goroutines, GC and the syncs count);
//   - recordings/core: media seconds recorded per CPU-second, which is how many such
//     participants one core could record at once at this stream's bitrate;
//   - kbit/s: the stream's bitrate (RTP payload, audio included).
//
// Cases: mediatest's VP8 clip with Opus; the H.264 test clip with Opus; a synthetic 720p
// H.264 camera at 1.5 Mbit/s with Opus (a typical call's camera bitrate); Opus alone.
func BenchmarkRecord(b *testing.B) {
	h264Units := readAnnexB(b, h264ClipPath)
	for _, bc := range []struct {
		name   string
		stream func() *stream
	}{
		{"VP8+Opus/320x240", func() *stream {
			f := vp8Clip(b)
			return mix(b, codecVP8, func(i int) []byte { return f[i%len(f)] }, 30)
		}},
		{"H264+Opus/320x180", func() *stream {
			return mix(b, codecH264, func(i int) []byte { return h264Units[i%len(h264Units)] }, h264ClipFPS)
		}},
		{"H264+Opus/720p-1.5Mbps", func() *stream {
			return mix(b, codecH264, synthH264(1_500_000, 30, 60), 30)
		}},
		{"Opus", func() *stream { return mix(b, noVideo, nil, 0) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := bc.stream()
			log := slog.New(slog.DiscardHandler)
			b.SetBytes(s.payload)
			b.ReportAllocs()
			var cpu time.Duration
			for b.Loop() {
				segments := 0
				rec := newRecorder(b.TempDir(), "alice", DefaultSegmentDuration, log, func(d segmentDone) {
					if err := d.commit(); err != nil {
						b.Fatal(err)
					}
					segments++
				})
				c0 := cpuTime()
				for _, p := range s.pkts {
					rec.handle(inPacket{video: p.video, pkt: clonePacket(p.pkt)})
				}
				rec.flush()
				rec.finishSegment()
				cpu += cpuTime() - c0
				if segments < benchSeconds/int(DefaultSegmentDuration/time.Second)-1 || rec.err != nil {
					b.Fatalf("%d segments written (%v), want about %d", segments, rec.err, benchSeconds/int(DefaultSegmentDuration/time.Second))
				}
			}
			b.ReportMetric(float64(s.payload)*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
			b.ReportMetric(s.media.Seconds()*float64(b.N)/cpu.Seconds(), "recordings/core")
			b.ReportMetric(float64(s.payload)*8/s.media.Seconds()/1000, "kbit/s")
		})
	}
}
