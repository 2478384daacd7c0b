package turnserver

import (
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// Two WebRTC peers that may only use relay candidates, as a browser behind a firewall that
// blocks UDP (or everything but the TURN server) would, connect through the server and
// exchange a data-channel message.
func TestWebRTCPeersConnectThroughTheServerAlone(t *testing.T) {
	noLeaks(t)
	ts := startServer(t, nil)

	for _, transport := range []string{"udp", "tcp"} {
		t.Run("with TURN over "+transport, func(t *testing.T) {
			var url string
			for _, u := range ts.URLs("127.0.0.1") {
				if strings.HasPrefix(u, "turn:") && strings.HasSuffix(u, "transport="+transport) {
					url = u
				}
			}
			creds := ts.credentials("s1")
			cfg := webrtc.Configuration{
				ICEServers: []webrtc.ICEServer{{
					URLs: []string{url}, Username: creds.Username, Credential: creds.Password,
				}},
				ICETransportPolicy: webrtc.ICETransportPolicyRelay,
			}
			var settings webrtc.SettingEngine
			settings.LoggerFactory = quietPion
			api := webrtc.NewAPI(webrtc.WithSettingEngine(settings))

			offerer := newPeer(t, api, cfg)
			answerer := newPeer(t, api, cfg)

			received := make(chan string, 1)
			answerer.OnDataChannel(func(dc *webrtc.DataChannel) {
				dc.OnMessage(func(m webrtc.DataChannelMessage) {
					select {
					case received <- string(m.Data):
					default:
					}
				})
			})
			dc, err := offerer.CreateDataChannel("chat", nil)
			if err != nil {
				t.Fatal(err)
			}
			opened := make(chan struct{})
			dc.OnOpen(func() { close(opened) })

			offer, err := offerer.CreateOffer(nil)
			if err != nil {
				t.Fatal(err)
			}
			setLocal(t, offerer, offer)
			if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
				t.Fatal(err)
			}
			answer, err := answerer.CreateAnswer(nil)
			if err != nil {
				t.Fatal(err)
			}
			setLocal(t, answerer, answer)
			if err := offerer.SetRemoteDescription(*answerer.LocalDescription()); err != nil {
				t.Fatal(err)
			}
			for _, pc := range []*webrtc.PeerConnection{offerer, answerer} {
				if sdp := pc.LocalDescription().SDP; strings.Contains(sdp, "typ host") ||
					strings.Contains(sdp, "typ srflx") || !strings.Contains(sdp, "typ relay") {
					t.Fatalf("local description offers more or less than relay candidates:\n%s", sdp)
				}
			}

			select {
			case <-opened:
			case <-time.After(20 * time.Second):
				t.Fatalf("data channel did not open; offerer ICE %s, answerer ICE %s",
					offerer.ICEConnectionState(), answerer.ICEConnectionState())
			}
			if err := dc.SendText("hello through the relay"); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-received:
				if got != "hello through the relay" {
					t.Fatalf("received %q", got)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("message did not arrive")
			}

			pair, err := offerer.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
			if err != nil || pair == nil {
				t.Fatalf("selected candidate pair: %v, %v", pair, err)
			}
			if pair.Local.Typ != webrtc.ICECandidateTypeRelay || pair.Remote.Typ != webrtc.ICECandidateTypeRelay {
				t.Fatalf("selected pair %s, want relay to relay", pair)
			}
			if n := ts.Allocations(); n < 2 {
				t.Fatalf("Allocations() = %d during the call, want at least 2", n)
			}
		})
	}
}

func newPeer(t *testing.T, api *webrtc.API, cfg webrtc.Configuration) *webrtc.PeerConnection {
	t.Helper()
	pc, err := api.NewPeerConnection(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pc.GracefulClose(); err != nil {
			t.Errorf("close peer connection: %v", err)
		}
	})
	return pc
}

// setLocal sets the local description and waits for ICE gathering to finish, so the
// description carries the relay candidates (no trickling in this test).
func setLocal(t *testing.T, pc *webrtc.PeerConnection, desc webrtc.SessionDescription) {
	t.Helper()
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("ICE gathering did not complete")
	}
}
