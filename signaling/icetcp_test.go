package signaling

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/media/mediatest"
	"github.com/assist-video/assist/signaling/wire"
)

// TestCallOverICETCP is a call between two participants whose networks drop UDP: with ice-tcp
// set, the SFU offers passive TCP candidates and media flows over TCP, no TURN involved.
func TestCallOverICETCP(t *testing.T) {
	cfg := testConfig(t)
	cfg.ICETCP = "127.0.0.1:0"
	ts := startTestServer(t, cfg)
	if ts.sfu.ICETCPAddr() == nil {
		t.Fatal("ice-tcp is set but the SFU listens on no TCP address")
	}
	s := ts.createSession(t)

	tcpOnly := mediatest.Config{TCPOnly: true}
	customer := ts.joinCallWith(t, linkToken(s.CustomerURL), "Ann", tcpOnly)
	customer.expect(wire.TypeWaiting, nil)
	specialist := ts.joinCallWith(t, linkToken(s.SpecialistURL), "Sam", tcpOnly)
	if err := specialist.peer.Start(); err != nil {
		t.Fatal(err)
	}
	specialist.write(wire.TypeAdmit, wire.Admit{ParticipantID: customer.id})
	customer.expect(wire.TypeAdmitted, nil)
	if err := customer.peer.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := customer.peer.WaitReceivedFrom(ctx, specialist.id, webrtc.RTPCodecTypeVideo, 30); err != nil {
		t.Fatalf("customer over ICE-TCP: %v", err)
	}
	if err := specialist.peer.WaitReceivedFrom(ctx, customer.id, webrtc.RTPCodecTypeVideo, 30); err != nil {
		t.Fatalf("specialist over ICE-TCP: %v", err)
	}
	for name, p := range map[string]*callPeer{"customer": customer, "specialist": specialist} {
		pair, err := p.peer.SelectedCandidatePair()
		if err != nil || pair == nil {
			t.Fatalf("%s: no selected candidate pair (%v)", name, err)
		}
		if pair.Local.Protocol != webrtc.ICEProtocolTCP || pair.Remote.Protocol != webrtc.ICEProtocolTCP ||
			pair.Remote.Port != uint16(ts.sfu.ICETCPAddr().(*net.TCPAddr).Port) {
			t.Fatalf("%s: media flows over %s, want TCP to the SFU's ICE-TCP port %s", name, pair, ts.sfu.ICETCPAddr())
		}
	}
}
