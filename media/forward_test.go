package media

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// rtcpRecorder stands in for the publisher's connection and notes when each PLI is sent.
type rtcpRecorder struct {
	sent chan time.Time
}

func (r *rtcpRecorder) WriteRTCP(pkts []rtcp.Packet) error {
	for _, p := range pkts {
		if _, ok := p.(*rtcp.PictureLossIndication); ok {
			r.sent <- time.Now()
		}
	}
	return nil
}

func TestKeyframeRequestsAreRateLimitedButNotLost(t *testing.T) {
	u := benchUpTrack()
	rec := &rtcpRecorder{sent: make(chan time.Time, 16)}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		u.keyframeLoop(rec)
	}()
	defer func() {
		close(u.done)
		<-stopped
	}()
	next := func() time.Time {
		t.Helper()
		select {
		case at := <-rec.sent:
			return at
		case <-time.After(testTimeout):
			t.Fatal("no PLI sent")
		}
		panic("unreachable")
	}

	u.requestKeyframe()
	first := next()
	// Three more requests within the interval: they wait, and share one PLI.
	for range 3 {
		u.requestKeyframe()
	}
	second := next()
	if gap := second.Sub(first); gap < keyframeInterval {
		t.Errorf("second PLI %v after the first, want at least %v", gap, keyframeInterval)
	}
	select {
	case <-rec.sent:
		t.Error("requests made during one wait caused more than one PLI")
	case <-time.After(keyframeInterval + 100*time.Millisecond):
	}
	if got := u.keyframeRequests.Load(); got != 2 {
		t.Errorf("keyframeRequests = %d, want 2", got)
	}
}

func TestAudioTracksNeverAskForKeyframes(t *testing.T) {
	u := benchUpTrack()
	u.kind = webrtc.RTPCodecTypeAudio
	u.requestKeyframe()
	select {
	case <-u.keyframeWanted:
		t.Error("an audio track queued a keyframe request")
	default:
	}
}

func TestForwardRewritesEachSubscribersSSRCAndPayloadTypeAndDropsExtensions(t *testing.T) {
	u := benchUpTrack()
	type written struct {
		ssrc      uint32
		pt        uint8
		extension bool
		payload   int
	}
	var got []written
	writers := []webrtc.TrackLocalWriter{
		writerFunc(func(h *rtp.Header, payload []byte) {
			got = append(got, written{h.SSRC, h.PayloadType, h.Extension, len(payload)})
		}),
		writerFunc(func(h *rtp.Header, payload []byte) {
			got = append(got, written{h.SSRC, h.PayloadType, h.Extension, len(payload)})
		}),
	}
	for i, w := range writers {
		d := newDownTrack(u)
		if _, err := d.Bind(stubContext{ssrc: webrtc.SSRC(5000 + i), writer: w}); err != nil {
			t.Fatal(err)
		}
		u.subscribe(d)
	}
	unbound := newDownTrack(u) // subscribed but not negotiated yet: skipped
	u.subscribe(unbound)

	var pkt rtp.Packet
	raw := chromeLikePacket(t)
	if err := pkt.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	u.forward(&pkt)

	want := []written{{5000, 100, false, 1100}, {5001, 100, false, 1100}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("written = %+v, want %+v", got, want)
	}
	if u.packetsOut.Load() != 2 {
		t.Errorf("packetsOut = %d, want 2", u.packetsOut.Load())
	}
	if want := uint64(2 * (12 + 1100)); u.bytesOut.Load() != want {
		t.Errorf("bytesOut = %d, want %d (header without extensions + payload, twice)", u.bytesOut.Load(), want)
	}
}

// writerFunc is a TrackLocalWriter that hands each packet to a function.
type writerFunc func(*rtp.Header, []byte)

func (f writerFunc) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	f(h, payload)
	return h.MarshalSize() + len(payload), nil
}

func (f writerFunc) Write(b []byte) (int, error) { return len(b), nil }

// rtpRecorder stands in for a subscriber's send path and keeps what it is given.
type rtpRecorder struct {
	headers []rtp.Header
}

func (r *rtpRecorder) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	r.headers = append(r.headers, h.Clone())
	return h.MarshalSize() + len(payload), nil
}

func (r *rtpRecorder) Write(b []byte) (int, error) { return len(b), nil }

func TestNACKedPacketsAreSentAgainFromTheTracksHistory(t *testing.T) {
	u := benchUpTrack()
	rec := &rtpRecorder{}
	d := newDownTrack(u)
	if _, err := d.Bind(stubContext{ssrc: 4242, writer: rec}); err != nil {
		t.Fatal(err)
	}
	u.subscribe(d)
	raw := chromeLikePacket(t)
	var pkt rtp.Packet
	for seq := range uint16(historySize + 10) {
		forwardOnePacket(u, raw, &pkt, seq)
	}
	rec.headers = nil
	nack := func(seqs ...uint16) []uint16 {
		rec.headers = nil
		d.resend(&rtcp.TransportLayerNack{MediaSSRC: 4242, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)})
		var got []uint16
		for _, h := range rec.headers {
			if h.SSRC != 4242 || h.PayloadType != 100 || h.Extension {
				t.Fatalf("retransmission with SSRC %d, payload type %d, extension %v: want the subscriber's 4242, 100 and none", h.SSRC, h.PayloadType, h.Extension)
			}
			got = append(got, h.SequenceNumber)
		}
		return got
	}

	if got := nack(historySize+5, historySize+7); len(got) != 2 || got[0] != historySize+5 || got[1] != historySize+7 {
		t.Fatalf("sent again %v, want [%d %d]", got, historySize+5, historySize+7)
	}
	if got := nack(historySize + 5); len(got) != 0 {
		t.Errorf("a NACK repeated at once was answered again: %v", got)
	}
	if got := nack(3); len(got) != 0 {
		t.Errorf("a packet older than the history was answered: %v", got)
	}
	mark := &d.resent[(historySize+8)%historySize]
	for i := range resendLimit {
		if got := nack(historySize + 8); len(got) != 1 {
			t.Fatalf("NACK %d after the interval: sent again %v", i+1, got)
		}
		mark.at = time.Now().Add(-time.Second) // as if the last one were long ago
	}
	if got := nack(historySize + 8); len(got) != 0 {
		t.Errorf("packet sent again more than %d times", resendLimit)
	}
	if got := nack(historySize + 9); len(got) != 1 {
		t.Errorf("another packet was not answered: %v", got)
	}
	if testing.AllocsPerRun(100, func() { u.history.add(1, raw) }) != 0 {
		t.Error("keeping a packet in the history allocates")
	}
}
