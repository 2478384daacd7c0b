package media

import (
	"errors"
	"net"
	"testing"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/assist-video/assist/media/mediatest"
)

func TestTwoParticipantsReceiveEachOthersMedia(t *testing.T) {
	sfu, room, alice, bob := callOfTwo(t, testContext(t), Config{})

	if got := sfu.Rooms(); got != 1 {
		t.Errorf("Rooms() = %d, want 1", got)
	}
	if got := sfu.Peers(); got != 2 {
		t.Errorf("Peers() = %d, want 2", got)
	}

	// What each client counted, then the SFU's counters: read in this order, the SFU's can
	// only be ahead.
	received := map[string]map[string]uint64{} // publisher → kind → packets its subscriber got
	for _, p := range []*participant{alice, bob} {
		for _, tc := range p.client.Received() {
			if received[tc.StreamID] == nil {
				received[tc.StreamID] = map[string]uint64{}
			}
			received[tc.StreamID][tc.Kind.String()] += tc.Packets
		}
	}
	stats := room.Stats()
	if len(stats) != 2 || stats[0].ParticipantID != "alice" || stats[1].ParticipantID != "bob" {
		t.Fatalf("Stats() participants = %+v, want alice and bob", stats)
	}
	wantCodec := map[string]string{"audio": webrtc.MimeTypeOpus, "video": webrtc.MimeTypeVP8}
	for _, ps := range stats {
		if len(ps.Tracks) != 2 {
			t.Errorf("%s publishes %d tracks, want 2: %+v", ps.ParticipantID, len(ps.Tracks), ps.Tracks)
		}
		for _, ts := range ps.Tracks {
			if ts.Codec != wantCodec[ts.Kind] {
				t.Errorf("%s %s track codec = %q, want %q", ps.ParticipantID, ts.Kind, ts.Codec, wantCodec[ts.Kind])
			}
			if ts.PacketsReceived == 0 || ts.BytesReceived == 0 || ts.PacketsForwarded == 0 || ts.BytesForwarded == 0 {
				t.Errorf("%s %s: counters not all > 0: %+v", ps.ParticipantID, ts.Kind, ts)
			}
			// One subscriber: at most every received packet is forwarded once, and forwarding
			// drops header extensions, so it never carries more bytes than arrived.
			if ts.PacketsForwarded > ts.PacketsReceived || ts.BytesForwarded > ts.BytesReceived {
				t.Errorf("%s %s: forwarded more than received: %+v", ps.ParticipantID, ts.Kind, ts)
			}
			if got := received[ps.ParticipantID][ts.Kind]; got > ts.PacketsForwarded {
				t.Errorf("%s %s: subscriber received %d packets, SFU forwarded only %d", ps.ParticipantID, ts.Kind, got, ts.PacketsForwarded)
			}
		}
	}
}

func TestLateJoinerGetsExistingTracksAndAKeyframe(t *testing.T) {
	ctx := testContext(t)
	sfu := newTestSFU(t, Config{})
	room := sfu.Room("session-1")

	alice := join(t, room, "alice")
	bob := join(t, room, "bob")
	waitMedia(t, ctx, alice, bob)
	waitMedia(t, ctx, bob, alice)
	alicePLIs, bobPLIs := alice.client.KeyframeRequests(), bob.client.KeyframeRequests()

	carol := join(t, room, "carol")
	waitMedia(t, ctx, carol, alice, bob)
	// The clip has one keyframe per 3 s loop; carol decodes at once only because the SFU
	// asked alice and bob for a keyframe when carol's copy of their video started to flow.
	for _, pub := range []struct {
		p    *participant
		plis uint64
	}{{alice, alicePLIs}, {bob, bobPLIs}} {
		if err := pub.p.client.WaitKeyframeRequests(ctx, pub.plis+1); err != nil {
			t.Fatal(err)
		}
		if err := carol.client.WaitKeyframe(ctx, pub.p.id); err != nil {
			t.Fatal(err)
		}
	}
	// A subscriber that cannot decode asks for a keyframe; the SFU passes it to the publisher.
	before := alice.client.KeyframeRequests()
	if err := carol.client.RequestKeyframe(); err != nil {
		t.Fatal(err)
	}
	if err := alice.client.WaitKeyframeRequests(ctx, before+1); err != nil {
		t.Fatal(err)
	}

	// Renegotiation the other way: the earlier participants receive carol.
	waitMedia(t, ctx, alice, carol)
	waitMedia(t, ctx, bob, carol)
	for _, p := range []*participant{alice, bob, carol} {
		if err := p.client.WaitLiveTracks(ctx, 4); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLeavingParticipantsTracksAreRemovedFromTheOthers(t *testing.T) {
	ctx := testContext(t)
	sfu := newTestSFU(t, Config{})
	room := sfu.Room("session-1")

	alice := join(t, room, "alice")
	bob := join(t, room, "bob")
	carol := join(t, room, "carol")
	for _, p := range []*participant{alice, bob, carol} {
		if err := p.client.WaitLiveTracks(ctx, 4); err != nil {
			t.Fatal(err)
		}
	}

	room.Leave("carol")
	select {
	case <-carol.peer.Done():
	default:
		t.Fatal("Leave returned before carol's peer was done")
	}
	for _, p := range []*participant{alice, bob} {
		if err := p.client.WaitLiveTracks(ctx, 2); err != nil {
			t.Fatal(err)
		}
		for _, tc := range p.client.Received() {
			if (tc.StreamID == "carol") != tc.Ended {
				t.Errorf("%s: track %s/%s ended = %v after carol left", p.id, tc.StreamID, tc.TrackID, tc.Ended)
			}
		}
	}
	if got := sfu.Peers(); got != 2 {
		t.Errorf("Peers() = %d after a leave, want 2", got)
	}
	if stats := room.Stats(); len(stats) != 2 {
		t.Errorf("Stats() after carol left = %+v, want alice and bob", stats)
	}
	// The two who stayed still hear each other.
	before := alice.client.ReceivedPackets(webrtc.RTPCodecTypeAudio)
	if err := alice.client.WaitReceivedFrom(ctx, "bob", webrtc.RTPCodecTypeAudio, before+25); err != nil {
		t.Fatal(err)
	}
}

func TestJoiningAgainReplacesThePreviousPeer(t *testing.T) {
	sfu := newTestSFU(t, Config{})
	room := sfu.Room("session-1")
	sig := mediatest.Signaller{Description: func(webrtc.SessionDescription) {}, Candidate: func(webrtc.ICECandidateInit) {}}

	first, err := room.Join("alice", sig)
	if err != nil {
		t.Fatal(err)
	}
	second, err := room.Join("alice", sig)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.Done():
	default:
		t.Fatal("the replaced peer is not done")
	}
	if err := first.HandleCandidate(webrtc.ICECandidateInit{}); !errors.Is(err, ErrClosed) {
		t.Errorf("replaced peer HandleCandidate = %v, want ErrClosed", err)
	}
	select {
	case <-second.Done():
		t.Fatal("the new peer is done")
	default:
	}
	if got := sfu.Peers(); got != 1 {
		t.Errorf("Peers() = %d, want 1", got)
	}
	if stats := room.Stats(); len(stats) != 1 || stats[0].ParticipantID != "alice" {
		t.Errorf("Stats() = %+v, want alice once", stats)
	}
}

func TestCloseEndsEverything(t *testing.T) {
	ignore := []goleak.Option{
		goleak.IgnoreCurrent(),
		goleak.IgnoreTopFunction("github.com/assist-video/assist/media/mediatest.(*Queue).run"), // stopped at cleanup
	}
	ctx := testContext(t)
	sfu, err := New(Config{ICELoopback: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	room := sfu.Room("session-1")
	alice := join(t, room, "alice")
	bob := join(t, room, "bob")
	waitMedia(t, ctx, alice, bob)

	sfu.CloseRoom("session-1")
	for _, p := range []*participant{alice, bob} {
		select {
		case <-p.peer.Done():
		default:
			t.Errorf("%s's peer not done after CloseRoom", p.id)
		}
	}
	if _, err := room.Join("carol", mediatest.Signaller{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Join on a closed room = %v, want ErrClosed", err)
	}
	if sfu.Rooms() != 0 || sfu.Peers() != 0 {
		t.Errorf("after CloseRoom: Rooms() = %d, Peers() = %d, want 0, 0", sfu.Rooms(), sfu.Peers())
	}

	// A room used after CloseRoom is a fresh one; Close ends it too.
	again := sfu.Room("session-1")
	if _, err := again.Join("dave", mediatest.Signaller{Description: func(webrtc.SessionDescription) {}, Candidate: func(webrtc.ICECandidateInit) {}}); err != nil {
		t.Fatal(err)
	}
	if err := sfu.Close(); err != nil {
		t.Fatal(err)
	}
	if sfu.Rooms() != 0 || sfu.Peers() != 0 {
		t.Errorf("after Close: Rooms() = %d, Peers() = %d, want 0, 0", sfu.Rooms(), sfu.Peers())
	}
	if _, err := sfu.Room("other").Join("erin", mediatest.Signaller{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Join after Close = %v, want ErrClosed", err)
	}
	alice.client.Close()
	bob.client.Close()
	if err := goleak.Find(ignore...); err != nil {
		t.Errorf("goroutines left after Close: %v", err)
	}
}

func TestOneUDPPortCarriesAllParticipants(t *testing.T) {
	ctx := testContext(t)
	port := freeUDPPort(t)
	sfu := newTestSFU(t, Config{UDPPort: port})
	room := sfu.Room("session-1")
	alice := join(t, room, "alice")
	bob := join(t, room, "bob")
	waitMedia(t, ctx, alice, bob)
	waitMedia(t, ctx, bob, alice)

	if err := sfu.Close(); err != nil {
		t.Fatal(err)
	}
	// Close frees the port.
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatalf("port %d still taken after Close: %v", port, err)
	}
	conn.Close()
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).Port
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"a UDP port above 65535", Config{UDPPort: 70000}},
		{"a negative UDP port", Config{UDPPort: -1}},
		{"a port range together with a UDP port", Config{UDPPort: 5000, PortMin: 6000, PortMax: 6100}},
		{"a port range upside down", Config{PortMin: 6100, PortMax: 6000}},
		{"a NAT IP that is not an IP", Config{NAT1To1IPs: []string{"example.com"}}},
	}
	for _, tt := range tests {
		t.Run("rejects "+tt.name, func(t *testing.T) {
			if s, err := New(tt.cfg); err == nil {
				s.Close()
				t.Fatal("New accepted it")
			}
		})
	}
}
