package mediatest

import (
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestTheVideoClipIsThreeSecondsOfVP8WithOneKeyframe(t *testing.T) {
	clip, err := loadVideo()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(clip.frames); got != 90 {
		t.Errorf("frames = %d, want 90 (3 s at 30 fps)", got)
	}
	if clip.frameDuration != time.Second/30 {
		t.Errorf("frame duration = %v, want 1/30 s", clip.frameDuration)
	}
	keyframes := 0
	for i, f := range clip.frames {
		if isVP8KeyframeData(f) {
			keyframes++
		}
		if clip.keyframeAtOrBefore[i] != 0 {
			t.Fatalf("frame %d restarts at %d, want 0", i, clip.keyframeAtOrBefore[i])
		}
	}
	if keyframes != 1 {
		t.Errorf("keyframes = %d, want 1: keyframe requests only matter if the clip has few", keyframes)
	}
}

func TestTheAudioClipIsThreeSecondsOfOpus(t *testing.T) {
	packets, err := loadAudio()
	if err != nil {
		t.Fatal(err)
	}
	// 3 s in 20 ms packets; the encoder may add one for its look-ahead.
	if n := len(packets); n < 150 || n > 152 {
		t.Errorf("packets = %d, want 150 (3 s of 20 ms)", n)
	}
	for i, p := range packets {
		// The TOC byte's frame-count code (RFC 6716, 3.1) is 0 when the packet holds exactly
		// one frame: one Ogg page is one 20 ms packet, as the replay assumes.
		if p[0]&0x03 != 0 {
			t.Fatalf("packet %d holds more than one Opus frame (TOC %#x)", i, p[0])
		}
		if d := opusFrameDurationOf(p[0]); d != opusFrameDuration {
			t.Fatalf("packet %d holds a %v frame, want %v", i, d, opusFrameDuration)
		}
	}
}

// opusFrameDurationOf reads the frame size from an Opus TOC byte (RFC 6716, table 2).
func opusFrameDurationOf(toc byte) time.Duration {
	config := toc >> 3
	switch {
	case config < 12: // SILK-only
		return []time.Duration{10, 20, 40, 60}[config%4] * time.Millisecond
	case config < 16: // hybrid
		return []time.Duration{10, 20}[config%2] * time.Millisecond
	default: // CELT-only
		return []time.Duration{2500, 5000, 10000, 20000}[config%4] * time.Microsecond
	}
}

func TestVP8KeyframePacketsAreRecognised(t *testing.T) {
	// A VP8 keyframe: 3-byte frame tag with bit 0 clear, then the start code 9d 01 2a.
	keyframe := []byte{0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a}
	tests := []struct {
		name    string
		payload []byte
		want    bool
	}{
		{"a minimal descriptor before a keyframe", append([]byte{0x10}, 0x50, 0x00), true},
		{"a descriptor with a 15-bit picture ID", append([]byte{0x90, 0x80, 0x81, 0x23}, 0x50), true},
		{"a descriptor with a 7-bit picture ID, TL0PICIDX and TID", append([]byte{0x90, 0xe0, 0x05, 0x01, 0x20}, 0x50), true},
		{"a whole keyframe header", append([]byte{0x10}, keyframe...), true},
		{"an interframe", []byte{0x10, 0x51}, false},
		{"a continuation of a partition", []byte{0x00, 0x50}, false},
		{"a later partition", []byte{0x11, 0x50}, false},
		{"a truncated descriptor", []byte{0x90}, false},
		{"nothing", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isVP8KeyframePacket(tt.payload); got != tt.want {
				t.Errorf("isVP8KeyframePacket(% x) = %v, want %v", tt.payload, got, tt.want)
			}
		})
	}
}

func TestNewPeerNeedsItsSignallingCallbacks(t *testing.T) {
	if _, err := NewPeer(Config{}); err == nil {
		t.Fatal("NewPeer accepted a config without OnDescription and OnCandidate")
	}
}

func TestStartOffersOnceAndCloseIsClean(t *testing.T) {
	offers := make(chan webrtc.SessionDescription, 4)
	p, err := NewPeer(Config{
		Name:          "solo",
		Loopback:      true,
		OnDescription: func(d webrtc.SessionDescription) { offers <- d },
		OnCandidate:   func(webrtc.ICECandidateInit) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-offers:
		if d.Type != webrtc.SDPTypeOffer {
			t.Fatalf("first description is %s, want an offer", d.Type)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no offer after Start")
	}
	p.Close()
	if err := p.HandleDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer}); err != ErrClosed {
		t.Errorf("HandleDescription after Close = %v, want ErrClosed", err)
	}
}

func TestSyntheticVideoHasTheAskedBitrateAndMarksItsKeyframes(t *testing.T) {
	v, err := newSyntheticVideo(SyntheticVideo{Bitrate: 2_400_000, FPS: 30})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.key) != 10_000 || len(v.delta) != 10_000 {
		t.Errorf("frames of %d and %d bytes, want 10000 (2.4 Mbit/s at 30 fps)", len(v.key), len(v.delta))
	}
	if v.frameDuration != time.Second/30 {
		t.Errorf("frame duration %v, want 1/30 s", v.frameDuration)
	}
	if !isVP8KeyframeData(v.key) || isVP8KeyframeData(v.delta) {
		t.Error("the keyframe must read as a keyframe and the delta frame as not one")
	}
	for _, bad := range []SyntheticVideo{{Bitrate: 0, FPS: 30}, {Bitrate: 1_000_000, FPS: 0}, {Bitrate: 1e9, FPS: 30}} {
		if _, err := newSyntheticVideo(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
