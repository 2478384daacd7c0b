package media

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/media/mediatest"
)

// browser is a bare Pion PeerConnection driven step by step by the test, so that the order of
// offers and answers is exactly the one under test. Its ICE never needs to connect.
type browser struct {
	t  *testing.T
	pc *webrtc.PeerConnection
	// descriptions carries what the SFU sent, in order.
	descriptions chan webrtc.SessionDescription
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.GracefulClose() })
	return &browser{t: t, pc: pc, descriptions: make(chan webrtc.SessionDescription, 16)}
}

func (b *browser) signaller() Signaller {
	return mediatest.Signaller{
		Description: func(d webrtc.SessionDescription) { b.descriptions <- d },
		Candidate:   func(webrtc.ICECandidateInit) {},
	}
}

// addCamera gives the browser a VP8 track to send, as getUserMedia + addTrack would.
func (b *browser) addTrack(kind webrtc.RTPCodecType) {
	b.t.Helper()
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	if kind == webrtc.RTPCodecTypeAudio {
		codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	}
	track, err := webrtc.NewTrackLocalStaticSample(codec, kind.String(), "browser")
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := b.pc.AddTrack(track); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) offer() webrtc.SessionDescription {
	b.t.Helper()
	offer, err := b.pc.CreateOffer(nil)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := b.pc.SetLocalDescription(offer); err != nil {
		b.t.Fatal(err)
	}
	return offer
}

func (b *browser) answer(offer webrtc.SessionDescription) webrtc.SessionDescription {
	b.t.Helper()
	if err := b.pc.SetRemoteDescription(offer); err != nil {
		b.t.Fatal(err)
	}
	answer, err := b.pc.CreateAnswer(nil)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := b.pc.SetLocalDescription(answer); err != nil {
		b.t.Fatal(err)
	}
	return answer
}

// next waits for the SFU's next description.
func (b *browser) next(want webrtc.SDPType) webrtc.SessionDescription {
	b.t.Helper()
	select {
	case d := <-b.descriptions:
		if d.Type != want {
			b.t.Fatalf("SFU sent %s, want %s", d.Type, want)
		}
		return d
	case <-time.After(testTimeout):
		b.t.Fatalf("no %s from the SFU", want)
	}
	panic("unreachable")
}

// quiet asserts the SFU sends nothing for a while. Used only to show that something does
// NOT happen; the positive path never waits on a timer.
func (b *browser) quiet(d time.Duration) {
	b.t.Helper()
	select {
	case got := <-b.descriptions:
		b.t.Fatalf("SFU sent an unexpected %s", got.Type)
	case <-time.After(d):
	}
}

// fakePublish puts a track from publisher into the room without any media behind it: enough
// to make the SFU renegotiate with everyone else.
func fakePublish(t *testing.T, room *Room, publisher *Peer, id string, kind webrtc.RTPCodecType) *upTrack {
	t.Helper()
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	if kind == webrtc.RTPCodecTypeAudio {
		codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	}
	up := &upTrack{
		publisher:      publisher,
		id:             id,
		streamID:       publisher.id,
		kind:           kind,
		codec:          codec,
		keyframeWanted: make(chan struct{}, 1),
		done:           make(chan struct{}),
	}
	if !room.publish(up) {
		t.Fatalf("publish %s: publisher not in the room", id)
	}
	return up
}

func offersTrack(d webrtc.SessionDescription, streamID, trackID string) bool {
	return strings.Contains(d.SDP, fmt.Sprintf("a=msid:%s %s", streamID, trackID))
}

func nopSignaller() Signaller {
	return mediatest.Signaller{Description: func(webrtc.SessionDescription) {}, Candidate: func(webrtc.ICECandidateInit) {}}
}

func TestImpoliteSFUKeepsItsOfferOnCollisionAndRenegotiatesChangesOnceStable(t *testing.T) {
	sfu := newTestSFU(t, Config{})
	room := sfu.Room("session-1")
	br := newBrowser(t)
	alice, err := room.Join("alice", br.signaller())
	if err != nil {
		t.Fatal(err)
	}
	bob, err := room.Join("bob", nopSignaller())
	if err != nil {
		t.Fatal(err)
	}

	// The browser offers first; the SFU answers.
	br.addTrack(webrtc.RTPCodecTypeVideo)
	if err := alice.HandleDescription(br.offer()); err != nil {
		t.Fatal(err)
	}
	if err := br.pc.SetRemoteDescription(br.next(webrtc.SDPTypeAnswer)); err != nil {
		t.Fatal(err)
	}

	// Bob publishes: the SFU offers alice his camera.
	fakePublish(t, room, bob, "bob-camera", webrtc.RTPCodecTypeVideo)
	sfuOffer := br.next(webrtc.SDPTypeOffer)
	if !offersTrack(sfuOffer, "bob", "bob-camera") {
		t.Fatalf("SFU offer lacks bob's camera:\n%s", sfuOffer.SDP)
	}

	// Meanwhile the browser offers too (it added its microphone): a collision. The SFU is
	// impolite: it ignores the browser's offer and keeps its own. (Pion cannot roll back, so
	// the browser's side of the collision is played by an offer it creates but does not set:
	// after a browser's rollback its state is exactly this.)
	br.addTrack(webrtc.RTPCodecTypeAudio)
	colliding, err := br.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.HandleDescription(colliding); err != nil {
		t.Fatalf("colliding offer: %v", err)
	}
	if got := alice.pc.SignalingState(); got != webrtc.SignalingStateHaveLocalOffer {
		t.Fatalf("SFU signaling state after the collision = %s, want have-local-offer", got)
	}

	// While the SFU's offer is pending, bob publishes his microphone: the SFU must not offer
	// now, but must once the pending offer is answered.
	fakePublish(t, room, bob, "bob-microphone", webrtc.RTPCodecTypeAudio)
	br.quiet(200 * time.Millisecond)

	// The polite browser answers the SFU's offer.
	if err := alice.HandleDescription(br.answer(sfuOffer)); err != nil {
		t.Fatal(err)
	}

	// Stable again: the SFU offers the change it held back.
	second := br.next(webrtc.SDPTypeOffer)
	if !offersTrack(second, "bob", "bob-camera") || !offersTrack(second, "bob", "bob-microphone") {
		t.Fatalf("second SFU offer lacks bob's tracks:\n%s", second.SDP)
	}
	if err := alice.HandleDescription(br.answer(second)); err != nil {
		t.Fatal(err)
	}

	// The browser's own change goes through now: it re-offers and the SFU answers.
	if err := alice.HandleDescription(br.offer()); err != nil {
		t.Fatal(err)
	}
	if err := br.pc.SetRemoteDescription(br.next(webrtc.SDPTypeAnswer)); err != nil {
		t.Fatal(err)
	}
	if got := alice.pc.SignalingState(); got != webrtc.SignalingStateStable {
		t.Errorf("SFU signaling state = %s, want stable", got)
	}
	// Nothing else is pending: no extra offer follows.
	br.quiet(200 * time.Millisecond)
}

func TestSFUWaitsForTheBrowsersFirstOffer(t *testing.T) {
	sfu := newTestSFU(t, Config{})
	room := sfu.Room("session-1")
	bob, err := room.Join("bob", nopSignaller())
	if err != nil {
		t.Fatal(err)
	}
	fakePublish(t, room, bob, "bob-camera", webrtc.RTPCodecTypeVideo)

	br := newBrowser(t)
	alice, err := room.Join("alice", br.signaller())
	if err != nil {
		t.Fatal(err)
	}
	br.quiet(200 * time.Millisecond) // the SFU does not offer first, though it has a track for alice

	br.addTrack(webrtc.RTPCodecTypeVideo)
	if err := alice.HandleDescription(br.offer()); err != nil {
		t.Fatal(err)
	}
	// The answer carries bob's camera on the browser's own sendrecv video m-line, so no
	// second round is needed.
	answer := br.next(webrtc.SDPTypeAnswer)
	if !offersTrack(answer, "bob", "bob-camera") {
		t.Fatalf("answer lacks bob's camera:\n%s", answer.SDP)
	}
	if err := br.pc.SetRemoteDescription(answer); err != nil {
		t.Fatal(err)
	}
	br.quiet(200 * time.Millisecond)
}

func TestBadInputIsRejectedWithoutHarm(t *testing.T) {
	sfu := newTestSFU(t, Config{})
	room := sfu.Room("session-1")
	br := newBrowser(t)
	alice, err := room.Join("alice", br.signaller())
	if err != nil {
		t.Fatal(err)
	}

	descriptions := []struct {
		name string
		desc webrtc.SessionDescription
	}{
		{"garbage SDP in an offer", webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: "this is not SDP"}},
		{"an empty offer", webrtc.SessionDescription{Type: webrtc.SDPTypeOffer}},
		{"an answer when no offer is pending", webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: "v=0\r\n"}},
		{"a rollback", webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}},
		{"a description without a type", webrtc.SessionDescription{SDP: "v=0\r\n"}},
	}
	for _, tt := range descriptions {
		t.Run("rejects "+tt.name, func(t *testing.T) {
			if err := alice.HandleDescription(tt.desc); !errors.Is(err, ErrInvalidDescription) {
				t.Errorf("HandleDescription = %v, want ErrInvalidDescription", err)
			}
		})
	}
	t.Run("rejects a garbage candidate", func(t *testing.T) {
		err := alice.HandleCandidate(webrtc.ICECandidateInit{Candidate: "candidate:garbage"})
		if !errors.Is(err, ErrInvalidCandidate) {
			t.Errorf("HandleCandidate = %v, want ErrInvalidCandidate", err)
		}
	})

	// A candidate before any description is held, then applied with the first offer.
	early := webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host"}
	if err := alice.HandleCandidate(early); err != nil {
		t.Fatalf("early candidate: %v", err)
	}
	br.addTrack(webrtc.RTPCodecTypeVideo)
	if err := alice.HandleDescription(br.offer()); err != nil {
		t.Fatalf("a good offer after bad input: %v", err)
	}
	if err := br.pc.SetRemoteDescription(br.next(webrtc.SDPTypeAnswer)); err != nil {
		t.Fatal(err)
	}
	// Pion's ICE agent takes the candidate on its own goroutine.
	waitFor(t, testContext(t), "the held candidate to be applied", func() bool {
		return hasRemoteCandidate(alice.pc, "127.0.0.1", 9)
	})
}

func TestAnOfferPionRejectsHalfWayClosesThePeer(t *testing.T) {
	sfu := newTestSFU(t, Config{})
	room := sfu.Room("session-1")
	br := newBrowser(t)
	alice, err := room.Join("alice", br.signaller())
	if err != nil {
		t.Fatal(err)
	}
	br.addTrack(webrtc.RTPCodecTypeVideo)
	offer := br.offer()
	// A broken candidate line inside the SDP: Pion refuses it only after it has entered
	// have-remote-offer, from which it cannot roll back.
	offer.SDP = strings.Replace(offer.SDP, "a=ice-pwd:", "a=candidate:garbage\r\na=ice-pwd:", 1)

	if err := alice.HandleDescription(offer); !errors.Is(err, ErrInvalidDescription) {
		t.Fatalf("HandleDescription = %v, want ErrInvalidDescription", err)
	}
	select {
	case <-alice.Done():
	case <-time.After(testTimeout):
		t.Fatal("the peer stayed open with a half-applied description")
	}
	if got := sfu.Peers(); got != 0 {
		t.Errorf("Peers() = %d, want 0", got)
	}
}

func TestTooManyEarlyCandidatesAreRefused(t *testing.T) {
	sfu := newTestSFU(t, Config{})
	alice, err := sfu.Room("session-1").Join("alice", nopSignaller())
	if err != nil {
		t.Fatal(err)
	}
	c := webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host"}
	for i := range maxPendingCandidates {
		if err := alice.HandleCandidate(c); err != nil {
			t.Fatalf("candidate %d: %v", i, err)
		}
	}
	if err := alice.HandleCandidate(c); !errors.Is(err, ErrTooManyCandidates) {
		t.Errorf("one candidate too many: %v, want ErrTooManyCandidates", err)
	}
}

func hasRemoteCandidate(pc *webrtc.PeerConnection, ip string, port int32) bool {
	for _, s := range pc.GetStats() {
		if c, ok := s.(webrtc.ICECandidateStats); ok && c.Type == webrtc.StatsTypeRemoteCandidate && c.IP == ip && c.Port == port {
			return true
		}
	}
	return false
}

func TestMatchCodecPrefersTheSameH264Profile(t *testing.T) {
	h264 := func(pt webrtc.PayloadType, fmtp string) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{PayloadType: pt, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: fmtp}}
	}
	vp8 := webrtc.RTPCodecParameters{PayloadType: 96, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}}
	baseline := "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"
	constrained := "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"

	tests := []struct {
		name    string
		want    webrtc.RTPCodecCapability
		offered []webrtc.RTPCodecParameters
		pt      webrtc.PayloadType
		ok      bool
	}{
		{"VP8 finds VP8 by MIME type", vp8.RTPCodecCapability, []webrtc.RTPCodecParameters{h264(102, constrained), vp8}, 96, true},
		{"H.264 finds its own profile", h264(0, constrained).RTPCodecCapability, []webrtc.RTPCodecParameters{h264(104, baseline), h264(102, constrained)}, 102, true},
		{"H.264 falls back to another profile", h264(0, constrained).RTPCodecCapability, []webrtc.RTPCodecParameters{vp8, h264(104, baseline)}, 104, true},
		{"MIME types compare case-insensitively", webrtc.RTPCodecCapability{MimeType: "video/vp8"}, []webrtc.RTPCodecParameters{vp8}, 96, true},
		{"VP8 does not match H.264 only", vp8.RTPCodecCapability, []webrtc.RTPCodecParameters{h264(102, constrained)}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := matchCodec(tt.want, tt.offered)
			if ok != tt.ok || (ok && got.PayloadType != tt.pt) {
				t.Errorf("matchCodec = %d, %v; want %d, %v", got.PayloadType, ok, tt.pt, tt.ok)
			}
		})
	}
}
