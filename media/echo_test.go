package media

import (
	"errors"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/media/mediatest"
)

// echoClient connects a mediatest peer (camera and microphone) to a new echo through
// in-process signalling, like the echo socket does for a browser.
func echoClient(t *testing.T, s *SFU, d time.Duration) (*mediatest.Peer, *Echo) {
	t.Helper()
	var echo *Echo
	join := func(sig mediatest.Signaller) (mediatest.Remote, error) {
		var err error
		echo, err = s.Echo(EchoConfig{Duration: d, Logger: testLogger(t), Signaller: sig})
		return echo, err
	}
	report := func(what string, err error) { t.Errorf("%s: %v", what, err) }
	client, stop, err := mediatest.Connect(mediatest.Config{Name: "tester", Loopback: true, Logger: testLogger(t)}, join, report, ErrClosed)
	if err != nil {
		if echo != nil {
			echo.Close()
		}
		t.Fatalf("echo: %v", err)
	}
	t.Cleanup(stop)
	t.Cleanup(client.Close)
	t.Cleanup(echo.Close)
	return client, echo
}

func TestEchoSendsTheMediaBack(t *testing.T) {
	s := newTestSFU(t, Config{})
	ctx := testContext(t)
	client, echo := echoClient(t, s, 0)

	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if err := client.WaitReceivedFrom(ctx, echoStreamID, kind, 30); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.WaitKeyframe(ctx, echoStreamID); err != nil {
		t.Fatal(err)
	}
	st := echo.Stats()
	if st.Tracks != 2 || st.PacketsIn == 0 || st.PacketsBack == 0 || st.PacketsBack > st.PacketsIn {
		t.Fatalf("echo stats = %+v, want 2 tracks and packets both ways", st)
	}
	if s.Peers() != 0 || s.Rooms() != 0 {
		t.Fatalf("an echo joined the SFU's rooms: %d peers in %d rooms", s.Peers(), s.Rooms())
	}

	t.Run("an answer is refused: the echo never offers", func(t *testing.T) {
		err := echo.HandleDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: "v=0"})
		if !errors.Is(err, ErrInvalidDescription) {
			t.Fatalf("HandleDescription(answer) = %v, want ErrInvalidDescription", err)
		}
	})
	t.Run("a bad candidate is refused", func(t *testing.T) {
		if err := echo.HandleCandidate(webrtc.ICECandidateInit{Candidate: "candidate:nonsense"}); !errors.Is(err, ErrInvalidCandidate) {
			t.Fatalf("HandleCandidate = %v, want ErrInvalidCandidate", err)
		}
	})
}

func TestEchoEndsAfterItsTime(t *testing.T) {
	s := newTestSFU(t, Config{})
	ctx := testContext(t)
	client, echo := echoClient(t, s, 3*time.Second)
	if err := client.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-echo.Done():
	case <-ctx.Done():
		t.Fatal("the echo is still open after its time")
	}
	if !echo.Expired() {
		t.Fatal("Expired() = false after the time limit")
	}
	if err := echo.HandleDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: "v=0"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("HandleDescription after the end = %v, want ErrClosed", err)
	}
}

func TestEchoConfigIsChecked(t *testing.T) {
	s := newTestSFU(t, Config{})
	sig := mediatest.Signaller{Description: func(webrtc.SessionDescription) {}, Candidate: func(webrtc.ICECandidateInit) {}}
	for name, cfg := range map[string]EchoConfig{
		"no signaller":       {},
		"a negative time":    {Signaller: sig, Duration: -time.Second},
		"more than the most": {Signaller: sig, Duration: MaxEchoDuration + time.Second},
	} {
		t.Run(name+" is refused", func(t *testing.T) {
			if e, err := s.Echo(cfg); err == nil {
				e.Close()
				t.Fatal("Echo succeeded")
			}
		})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Echo(EchoConfig{Signaller: sig}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Echo on a closed SFU = %v, want ErrClosed", err)
	}
}
