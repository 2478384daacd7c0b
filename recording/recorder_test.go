package recording

import (
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// h264Stream packetizes the H.264 clip (loops times) and the Opus clip as a browser would,
// interleaved in timestamp order: the RTP a recorder's tap sees.
func h264Stream(t testing.TB, loops int) (pkts []inPacket, frames int) {
	units := readAnnexB(t, h264ClipPath)
	audio := readOpusClip(t)
	vp := rtp.NewPacketizer(1200, 102, 1111, &codecs.H264Payloader{}, rtp.NewRandomSequencer(), 90000)
	ap := rtp.NewPacketizer(1200, 111, 2222, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)
	const frameTicks = 90000 / h264ClipFPS
	var vTime, aTime time.Duration
	ai := 0
	for range loops {
		for _, u := range units {
			for aTime <= vTime {
				for _, p := range ap.Packetize(audio[ai%len(audio)], 960) {
					pkts = append(pkts, inPacket{pkt: p})
				}
				ai++
				aTime += 20 * time.Millisecond
			}
			for _, p := range vp.Packetize(u, frameTicks) {
				pkts = append(pkts, inPacket{video: codecH264, pkt: p})
			}
			frames++
			vTime += time.Second / h264ClipFPS
		}
	}
	return pkts, frames
}

func TestRecorderH264WithLossAndReordering(t *testing.T) {
	pkts, frames := h264Stream(t, 3)
	perLoop := frames / 3

	// The payloader sends the parameter sets in a STAP-A and splits big slices (the IDRs)
	// into FU-A. Lose a P frame a second into the first loop, and the last fragment (with the
	// marker bit) of the second loop's IDR: each time the recorder must skip to the next IDR,
	// asking for one.
	var stapA, fuA int
	var ts0 uint32
	for _, p := range pkts {
		if p.video != noVideo {
			ts0 = p.pkt.Timestamp
			break
		}
	}
	lostP, lostIDR := -1, -1
	var lastIDRStart = -1
	idrs := 0
	for i, p := range pkts {
		if p.video == noVideo {
			continue
		}
		b := p.pkt.Payload
		switch b[0] & 0x1f {
		case 24:
			stapA++
		case 28:
			fuA++
			if b[1]&0x1f == nalIDR && b[1]&0x80 != 0 {
				idrs++
				lastIDRStart = i
			}
			if idrs == 2 && lostIDR < 0 && i > lastIDRStart && b[1]&0x40 != 0 {
				lostIDR = i
			}
		case nalSlice:
			if lostP < 0 && p.pkt.Timestamp-ts0 > 90000 {
				lostP = i
			}
		}
	}
	if stapA == 0 || fuA == 0 || lostP < 0 || lostIDR < 0 {
		t.Fatalf("the clip packetizes into %d STAP-A and %d FU-A packets (P frame to lose %d, IDR fragment %d); want both", stapA, fuA, lostP, lostIDR)
	}
	framesBeforeLoss := int((pkts[lostP].pkt.Timestamp - ts0) / (90000 / h264ClipFPS))
	var kept []inPacket
	for i, p := range pkts {
		if i != lostP && i != lostIDR {
			kept = append(kept, p)
		}
	}
	pkts = kept
	// Reorder: swap neighbours here and there, as the network does.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 1; i < len(pkts); i++ {
		if rng.IntN(8) == 0 {
			pkts[i-1], pkts[i] = pkts[i], pkts[i-1]
		}
	}

	dir := t.TempDir()
	var done []segmentDone
	rec := newRecorder(dir, "carol", DefaultSegmentDuration, testLogger(t), func(d segmentDone) {
		if err := d.commit(); err != nil {
			t.Error(err)
		}
		done = append(done, d)
	})
	requests := 0
	rec.RequestKeyframe = func() { requests++ }
	for _, p := range pkts {
		rec.handle(p)
		rec.lastKFReq = time.Time{} // no wall-clock limit on requests here
	}
	rec.flush()
	rec.finishSegment()
	if rec.err != nil {
		t.Fatal(rec.err)
	}
	if len(done) == 0 {
		t.Fatal("no segment written")
	}
	if requests == 0 {
		t.Error("the recorder never asked for a keyframe after the loss")
	}

	written := 0
	for _, d := range done {
		if filepath.Ext(d.path) != ".mkv" || d.ContentType != contentTypeMatroska {
			t.Errorf("%s: content type %s", d.path, d.ContentType)
		}
		codecID, video, audio := readBlocks(d.path)
		if codecID != "V_MPEG4/ISO/AVC" || len(video) == 0 || !video[0].key || len(audio) == 0 {
			t.Fatalf("%s: codec %q, %d video blocks, %d audio blocks; want H.264 starting with a keyframe, and audio", d.path, codecID, len(video), len(audio))
		}
		written += len(video)
		if p := ffprobe(t, d.path); p.codecs()["video"] != "h264" || p.codecs()["audio"] != "opus" { // and decodes
			t.Errorf("%s: streams %v", d.path, p.codecs())
		}
	}
	// The first loop up to the lost P frame, nothing of the second (its IDR is broken), all of
	// the third.
	if want := framesBeforeLoss + perLoop; written < want-1 || written > want+1 {
		t.Errorf("%d frames written of %d; want %d: %d before the loss and the last loop", written, frames, want, framesBeforeLoss)
	}
	t.Logf("%d segments, %d of %d frames written, %d STAP-A and %d FU-A packets, %d keyframe requests", len(done), written, frames, stapA, fuA, requests)
}

// slowPublisher replays, on a clock of the test's own, a VP8 camera and an Opus microphone
// whose RTP clocks run slower than the arrivals (by rate: 0.87 means 13% slower), as the test
// publishers do on a loaded machine. The camera sends a keyframe when asked and otherwise
// every keyEvery frames.
type slowPublisher struct {
	videoRate, audioRate float64
	videoStart           time.Duration // the camera starts after the microphone
	keyEvery             int
}

func vp8TestFrame(key bool) []byte {
	b := make([]byte, 200)
	b[0] = 1 // an interframe
	if key {
		b[0] = 0
		b[3], b[4], b[5] = 0x9d, 0x01, 0x2a
		b[6], b[8] = 320&0xff, 240 // 320x240
		b[7] = 320 >> 8
	}
	return b
}

// run feeds rec until length of arrival time has passed and returns the media time each
// track produced.
func (p slowPublisher) run(rec *Recorder, wall *time.Duration, length time.Duration) (video, audio time.Duration) {
	vp := rtp.NewPacketizer(1200, 96, 1111, &codecs.VP8Payloader{}, rtp.NewRandomSequencer(), 90000)
	ap := rtp.NewPacketizer(1200, 111, 2222, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)
	keyAsked := true
	rec.RequestKeyframe = func() { keyAsked = true }
	const frame, opus = time.Second / 30, 20 * time.Millisecond
	vArrival, aArrival := p.videoStart, time.Duration(0)
	var vFrames, aFrames int
	for {
		vNext, aNext := vArrival < length, aArrival < length
		if !vNext && !aNext {
			break
		}
		if vNext && (!aNext || vArrival <= aArrival) {
			*wall = vArrival
			key := keyAsked || vFrames%p.keyEvery == 0
			keyAsked = false
			for _, pkt := range vp.Packetize(vp8TestFrame(key), 3000) {
				rec.handle(inPacket{video: codecVP8, pkt: pkt})
			}
			vFrames++
			vArrival = p.videoStart + time.Duration(float64(vFrames)*float64(frame)/p.videoRate)
		} else {
			*wall = aArrival
			for _, pkt := range ap.Packetize([]byte{0xfc, 1, 2, 3}, 960) {
				rec.handle(inPacket{pkt: pkt})
			}
			aFrames++
			aArrival = time.Duration(float64(aFrames) * float64(opus) / p.audioRate)
		}
		rec.lastKFReq = time.Time{} // no wall-clock limit on requests here
	}
	return time.Duration(vFrames) * frame, time.Duration(aFrames) * opus
}

func TestRecorderSegmentsOfASlowPublisherAreContiguous(t *testing.T) {
	for _, tc := range []struct {
		name string
		pub  slowPublisher
	}{
		{"when audio and video run 13% slow", slowPublisher{videoRate: 0.87, audioRate: 0.87, videoStart: 100 * time.Millisecond, keyEvery: 90}},
		{"when video runs slower than audio", slowPublisher{videoRate: 0.80, audioRate: 0.90, videoStart: 300 * time.Millisecond, keyEvery: 90}},
		{"when audio runs slower than video", slowPublisher{videoRate: 0.92, audioRate: 0.78, videoStart: 50 * time.Millisecond, keyEvery: 45}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var done []segmentDone
			rec := newRecorder(dir, "dave", 2*time.Second, testLogger(t), func(d segmentDone) {
				if err := d.commit(); err != nil {
					t.Error(err)
				}
				done = append(done, d)
			})
			var wall time.Duration
			base := time.Now()
			rec.t0 = base
			rec.now = func() time.Time { return base.Add(wall) }
			const length = 12 * time.Second
			video, audio := tc.pub.run(rec, &wall, length)
			rec.flush()
			rec.finishSegment()
			if rec.err != nil {
				t.Fatal(rec.err)
			}
			if len(done) < 3 {
				t.Fatalf("%d segments, want at least 3", len(done))
			}
			var total time.Duration
			var end time.Duration
			audioBlocks := 0
			for i, d := range done {
				start := d.StartedAt.Sub(base)
				dur := time.Duration(d.DurationMS) * time.Millisecond
				_, vb, ab := readBlocks(d.path)
				audioBlocks += len(ab)
				var last time.Duration
				for _, b := range append(vb, ab...) {
					last = max(last, b.at)
				}
				t.Logf("segment %d: %v to %v (%v), %d video and %d audio blocks, the last at %v", d.Seq, start, start+dur, dur, len(vb), len(ab), last)
				if i > 0 && start < end-time.Millisecond {
					t.Errorf("segment %d starts at %v, before the end of the previous one at %v", d.Seq, start, end)
				}
				if last >= dur {
					t.Errorf("segment %d lasts %v but holds a block at %v", d.Seq, dur, last)
				}
				if len(vb) == 0 || !vb[0].key || vb[0].at != 0 {
					t.Errorf("segment %d does not start with a keyframe", d.Seq)
				}
				end = start + dur
				total += dur
			}
			wait := done[0].StartedAt.Sub(base) // for the first keyframe
			if total > length {
				t.Errorf("segments last %v in all, more than the %v recorded", total, length)
			}
			if produced := min(video, audio); total < produced-wait-300*time.Millisecond {
				t.Errorf("segments last %v in all; the publisher produced %v of media, %v before the first segment", total, produced, wait)
			}
			if want := int((audio - wait) / (20 * time.Millisecond) * 9 / 10); audioBlocks < want {
				t.Errorf("%d audio frames written of the %v produced from the first segment on; want at least %d", audioBlocks, audio-wait, want)
			}
			t.Logf("%d segments, %v in all; %v of video and %v of audio produced in %v, %v before the first segment", len(done), total, video, audio, length, wait)
		})
	}
}
