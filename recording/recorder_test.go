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
