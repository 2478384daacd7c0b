package recording

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
)

// vp8Packets packetizes mediatest's VP8 clip (3 s, 320x240, 30 fps) as a publisher would.
func vp8Packets(b *testing.B, loops int) (pkts []*rtp.Packet, payloadBytes int64) {
	raw, err := os.ReadFile("../media/mediatest/testdata/video.ivf")
	if err != nil {
		b.Fatal(err)
	}
	var frames [][]byte
	r, _, err := ivfreader.NewWith(bytes.NewReader(raw))
	if err != nil {
		b.Fatal(err)
	}
	for {
		f, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		frames = append(frames, f)
	}
	packetizer := rtp.NewPacketizer(1200, 96, 1234, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
	for range loops {
		for _, f := range frames {
			for _, p := range packetizer.Packetize(f, 3000) {
				pkts = append(pkts, p)
				payloadBytes += int64(len(p.Payload))
			}
		}
	}
	return pkts, payloadBytes
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRecordVP8 depacketizes and writes 30 s of VP8 (ten loops of the mediatest clip) to
// WebM segments on disk per iteration, on the recorder's own goroutine as in production but
// without the SFU. It reports RTP payload bytes recorded per CPU-second of the whole process.
func BenchmarkRecordVP8(b *testing.B) {
	pkts, size := vp8Packets(b, 10)
	log := slog.New(slog.DiscardHandler)
	b.SetBytes(size)
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		rec := newRecorder(b.TempDir(), "alice", DefaultSegmentDuration, log, nil)
		c0 := cpuTime()
		for _, p := range pkts {
			rec.handle(inPacket{video: true, pkt: p})
		}
		rec.flush()
		rec.finishSegment()
		cpu += cpuTime() - c0
		if rec.seq < 2 {
			b.Fatalf("%d segments written, want several", rec.seq)
		}
	}
	b.ReportMetric(float64(size)*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
}
