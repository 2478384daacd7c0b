package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/assist-video/assist/media/mediatest"
	"github.com/assist-video/assist/signaling/wire"
	"github.com/assist-video/assist/webclient"
)

// echoClient is a Go tester on the echo socket (/v1/echo): a mediatest peer whose signalling
// goes over the socket, as the setup test page's does.
type echoClient struct {
	t      *testing.T
	owner  *testing.T // logs from the reader go here: it may outlive t
	conn   *websocket.Conn
	wmu    sync.Mutex
	peer   *mediatest.Peer
	events chan wire.Envelope // everything but SDP and candidates
	closed chan struct{}
	end    error // why the socket ended; read after closed
}

// dialEcho connects a tester; owner is the test whose end closes it (it may outlive the
// server's test).
func (ts *testServer) dialEcho(t *testing.T) *echoClient { return ts.dialEchoFor(t, t) }

func (ts *testServer) dialEchoFor(t, owner *testing.T) *echoClient {
	t.Helper()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/echo"
	conn, resp, err := websocket.DefaultDialer.Dial(url, nil) // no API key, no link: a public route
	if err != nil {
		t.Fatalf("dial /v1/echo: %v (%v)", err, resp)
	}
	owner.Cleanup(func() { conn.Close() })
	c := &echoClient{t: t, owner: owner, conn: conn, events: make(chan wire.Envelope, 64), closed: make(chan struct{})}
	peer, err := mediatest.NewPeer(mediatest.Config{
		Name:     "tester",
		Loopback: true,
		OnDescription: func(d webrtc.SessionDescription) {
			c.send(wire.TypeDescription, wire.Description{Type: d.Type.String(), SDP: d.SDP})
		},
		OnCandidate: func(cand webrtc.ICECandidateInit) {
			c.send(wire.TypeCandidate, wire.Candidate{Candidate: cand.Candidate, SDPMid: cand.SDPMid,
				SDPMLineIndex: cand.SDPMLineIndex, UsernameFragment: cand.UsernameFragment})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.peer = peer
	owner.Cleanup(peer.Close)
	go c.readLoop()
	return c
}

func (c *echoClient) send(typ wire.Type, payload any) {
	raw, _ := json.Marshal(payload)
	c.sendRaw(wire.Envelope{Type: typ, Payload: raw})
}

func (c *echoClient) sendRaw(v any) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.WriteJSON(v)
}

func (c *echoClient) readLoop() {
	defer close(c.closed)
	defer close(c.events)
	for {
		var env wire.Envelope
		if err := c.conn.ReadJSON(&env); err != nil {
			c.end = err
			return
		}
		switch env.Type {
		case wire.TypeDescription:
			var d wire.Description
			_ = json.Unmarshal(env.Payload, &d)
			if err := c.peer.HandleDescription(webrtc.SessionDescription{Type: webrtc.NewSDPType(d.Type), SDP: d.SDP}); err != nil {
				c.owner.Logf("handle description: %v", err)
			}
		case wire.TypeCandidate:
			var cand wire.Candidate
			_ = json.Unmarshal(env.Payload, &cand)
			_ = c.peer.HandleCandidate(webrtc.ICECandidateInit{Candidate: cand.Candidate, SDPMid: cand.SDPMid,
				SDPMLineIndex: cand.SDPMLineIndex, UsernameFragment: cand.UsernameFragment})
		default:
			c.events <- env
		}
	}
}

// next returns the next message other than SDP and candidates.
func (c *echoClient) next(within time.Duration) wire.Envelope {
	c.t.Helper()
	select {
	case env, ok := <-c.events:
		if !ok {
			c.t.Fatalf("the echo socket closed: %v", c.end)
		}
		return env
	case <-time.After(within):
		c.t.Fatalf("no message within %s", within)
	}
	return wire.Envelope{}
}

func (c *echoClient) expectError(code wire.ErrorCode) wire.Error {
	c.t.Helper()
	env := c.next(10 * time.Second)
	var e wire.Error
	if env.Type != wire.TypeError || json.Unmarshal(env.Payload, &e) != nil || e.Code != code {
		c.t.Fatalf("got %s %s, want an error %s", env.Type, env.Payload, code)
	}
	return e
}

func TestEchoSocketSendsMediaBackThenCloses(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dialEcho(t)

	t.Run("bad messages get typed errors and the socket stays open", func(t *testing.T) {
		c.send(wire.TypeDescription, wire.Description{Type: "offer", SDP: "v=0"})
		c.expectError(wire.CodeInvalidState) // before echo_start
		c.send(wire.TypeCandidate, wire.Candidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host"})
		c.expectError(wire.CodeInvalidState)
		c.send(wire.TypeChat, wire.ChatSend{Text: "hello"})
		c.expectError(wire.CodeUnknownType)
		c.send(wire.TypeJoin, wire.Join{Token: "x"})
		c.expectError(wire.CodeUnknownType)
		c.sendRaw(map[string]any{"type": "echo_start", "payload": map[string]any{"seconds": 600}})
		c.expectError(wire.CodeBadMessage)
		c.sendRaw(map[string]any{"type": "echo_start", "payload": map[string]any{"surprise": true}})
		c.expectError(wire.CodeBadMessage)
		c.wmu.Lock()
		_ = c.conn.WriteMessage(websocket.TextMessage, []byte("not json"))
		c.wmu.Unlock()
		c.expectError(wire.CodeBadMessage)
	})

	c.send(wire.TypeEchoStart, wire.EchoStart{Seconds: 4})
	env := c.next(10 * time.Second)
	var ready wire.EchoReady
	if env.Type != wire.TypeEchoReady || json.Unmarshal(env.Payload, &ready) != nil {
		t.Fatalf("got %s %s, want echo_ready", env.Type, env.Payload)
	}
	if ready.Seconds != 4 || ready.ICEServers == nil {
		t.Fatalf("echo_ready = %+v, want 4 seconds and an ICE server list (empty without STUN/TURN)", ready)
	}

	t.Run("one echo per socket", func(t *testing.T) {
		c.send(wire.TypeEchoStart, wire.EchoStart{})
		c.expectError(wire.CodeInvalidState)
	})

	if err := c.peer.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if err := c.peer.WaitReceivedFrom(ctx, "echo", kind, 20); err != nil {
			t.Fatalf("the media did not come back: %v", err)
		}
	}

	t.Run("the echo ends at its time limit and the socket closes", func(t *testing.T) {
		env := c.next(15 * time.Second)
		var ended wire.EchoEnded
		if env.Type != wire.TypeEchoEnded || json.Unmarshal(env.Payload, &ended) != nil || ended.Reason != "time_limit" {
			t.Fatalf("got %s %s, want echo_ended time_limit", env.Type, env.Payload)
		}
		select {
		case <-c.closed:
		case <-time.After(10 * time.Second):
			t.Fatal("the socket is still open after echo_ended")
		}
		var ce *websocket.CloseError
		if !errors.As(c.end, &ce) || ce.Code != websocket.CloseNormalClosure {
			t.Fatalf("socket ended with %v, want a normal close", c.end)
		}
	})
}

func TestEchoSocketChecksTheLink(t *testing.T) {
	ts := newTestServer(t)
	s := ts.createSession(t)

	t.Run("a session link is accepted", func(t *testing.T) {
		c := ts.dialEcho(t)
		c.send(wire.TypeEchoStart, wire.EchoStart{Token: linkToken(s.CustomerURL), Seconds: 1})
		if env := c.next(10 * time.Second); env.Type != wire.TypeEchoReady {
			t.Fatalf("got %s %s, want echo_ready", env.Type, env.Payload)
		}
		// Nobody offers: the echo ends at its time all the same.
		if env := c.next(15 * time.Second); env.Type != wire.TypeEchoEnded {
			t.Fatalf("got %s %s, want echo_ended", env.Type, env.Payload)
		}
	})
	t.Run("a bad token is refused and the socket closes", func(t *testing.T) {
		c := ts.dialEcho(t)
		c.send(wire.TypeEchoStart, wire.EchoStart{Token: "not-a-token"})
		c.expectError(wire.CodeUnauthorized)
		select {
		case <-c.closed:
		case <-time.After(10 * time.Second):
			t.Fatal("the socket is still open")
		}
	})
}

func goodDiagnostics() wire.DiagnosticsSend {
	rtt, jitter, loss, kbps := 23.5, 4.0, 0.0, 1200.0
	level := 0.6
	return wire.DiagnosticsSend{
		Verdict: wire.VerdictGood, Camera: wire.DeviceOK, Microphone: wire.DeviceOK, AudioLevel: &level,
		Speaker: "played", DurationMs: 8200,
		Network: &wire.DiagnosticsNetwork{Transport: "udp", CandidateType: "host", RTTMs: &rtt,
			JitterMs: &jitter, LossPct: &loss, SendKbps: &kbps},
	}
}

func TestDiagnosticsReachTheSpecialistsAndTheSessionAPI(t *testing.T) {
	ts := newTestServer(t)
	s := ts.createSession(t)
	customer := ts.dial(t)
	customer.send(wire.TypeJoin, wire.Join{Token: linkToken(s.CustomerURL), Name: "Ann"})
	customer.expect(wire.TypeWaiting, nil)
	specialist := ts.dial(t)
	specialist.send(wire.TypeJoin, wire.Join{Token: linkToken(s.SpecialistURL), Name: "Sam"})
	specialist.expect(wire.TypeHistory, nil)

	// From the waiting room: the setup test runs before admission.
	customer.send(wire.TypeDiagnostics, goodDiagnostics())
	var got wire.Diagnostics
	specialist.expect(wire.TypeDiagnostics, &got)
	if got.From.Role != "customer" || got.From.Name != "Ann" || got.ID == "" || got.Verdict != wire.VerdictGood ||
		got.Network == nil || got.Network.Transport != "udp" || got.Network.RTTMs == nil || *got.Network.RTTMs != 23.5 {
		t.Fatalf("the specialist got %+v", got)
	}

	t.Run("a waiting customer still receives chat only", func(t *testing.T) {
		customer.send(wire.TypeChat, wire.ChatSend{Text: "marker"})
		for {
			env, err := customer.next()
			if err != nil {
				t.Fatal(err)
			}
			if env.Type == wire.TypeDiagnostics {
				t.Fatal("a waiting customer was sent a diagnostics message")
			}
			if env.Type == wire.TypeChat {
				return
			}
		}
	})

	t.Run("the figures are in the session API", func(t *testing.T) {
		sess := ts.getSession(t, s.ID)
		for _, e := range sess.Timeline {
			if e.Type != wire.TypeDiagnostics {
				continue
			}
			var d wire.Diagnostics
			if err := json.Unmarshal(e.Payload, &d); err != nil || d.Verdict != wire.VerdictGood || d.Network == nil || *d.Network.LossPct != 0 {
				t.Fatalf("timeline entry %s: %v", e.Payload, err)
			}
			return
		}
		t.Fatalf("no diagnostics entry in the timeline: %+v", sess.Timeline)
	})

	t.Run("a specialist cannot send diagnostics", func(t *testing.T) {
		specialist.send(wire.TypeDiagnostics, goodDiagnostics())
		var e wire.Error
		specialist.expect(wire.TypeError, &e)
		if e.Code != wire.CodeForbidden {
			t.Fatalf("error = %+v, want forbidden", e)
		}
	})

	bad := func(change func(d *wire.DiagnosticsSend)) wire.DiagnosticsSend {
		d := goodDiagnostics()
		change(&d)
		return d
	}
	tooMuch := 150.0
	negative := -1.0
	for name, d := range map[string]wire.DiagnosticsSend{
		"an unknown verdict":       bad(func(d *wire.DiagnosticsSend) { d.Verdict = "great" }),
		"a camera that is silent":  bad(func(d *wire.DiagnosticsSend) { d.Camera = wire.DeviceSilent }),
		"loss over 100%":           bad(func(d *wire.DiagnosticsSend) { d.Network.LossPct = &tooMuch }),
		"a negative round trip":    bad(func(d *wire.DiagnosticsSend) { d.Network.RTTMs = &negative }),
		"an unknown transport":     bad(func(d *wire.DiagnosticsSend) { d.Network.Transport = "carrier-pigeon" }),
		"an unknown problem":       bad(func(d *wire.DiagnosticsSend) { d.Problems = []string{"gremlins"} }),
		"an audio level above one": bad(func(d *wire.DiagnosticsSend) { d.AudioLevel = &tooMuch }),
	} {
		t.Run(name+" is refused", func(t *testing.T) {
			customer.send(wire.TypeDiagnostics, d)
			var e wire.Error
			customer.expect(wire.TypeError, &e)
			if e.Code != wire.CodeBadMessage {
				t.Fatalf("error = %+v, want bad_message", e)
			}
		})
	}
}

func TestSetupTestPageIsServedUnderTheCSP(t *testing.T) {
	ts := newTestServer(t)
	resp, err := http.Get(ts.URL + "/test")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /test: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if got := resp.Header.Get("Content-Security-Policy"); got != webclient.ContentSecurityPolicy {
		t.Fatalf("CSP = %q", got)
	}
	page := string(body)
	if !strings.Contains(page, `<script type="module" src="/assets/js/diagnostics.js"></script>`) {
		t.Fatal("the page does not load diagnostics.js")
	}
	// The same rules as webclient's TestPagesHaveNoInlineCode: no inline script, style or handler.
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script(\s[^>]*)?>\s*[^<\s]`),
		regexp.MustCompile(`(?i)\sstyle\s*=`), regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)\son[a-z]+\s*=`), regexp.MustCompile(`(?i)javascript:`),
	} {
		if m := re.FindString(page); m != "" {
			t.Errorf("inline code %q", m)
		}
	}
	if resp, err := http.Get(ts.URL + "/assets/js/diagnostics.js"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET diagnostics.js: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
}

// TestAStoppedNodeEndsItsEchoTests: an echo test running when the node stops is ended by the
// drain (the client is told the server is going away) and leaves no goroutine behind.
func TestAStoppedNodeEndsItsEchoTests(t *testing.T) {
	http.DefaultClient.CloseIdleConnections()
	before := goleak.IgnoreCurrent()
	var c *echoClient
	parent := t // the tester outlives the node
	t.Run("a node runs an echo test, then stops", func(t *testing.T) {
		ts := newTestServer(t)
		c = ts.dialEchoFor(t, parent)
		c.send(wire.TypeEchoStart, wire.EchoStart{})
		if env := c.next(10 * time.Second); env.Type != wire.TypeEchoReady {
			t.Fatalf("got %s, want echo_ready", env.Type)
		}
		if err := c.peer.Start(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if err := c.peer.WaitReceivedFrom(ctx, "echo", webrtc.RTPCodecTypeVideo, 20); err != nil {
			t.Fatal(err)
		}
	})
	if c == nil {
		return
	}
	select {
	case <-c.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the echo socket is still open after the node stopped")
	}
	var ce *websocket.CloseError
	if !errors.As(c.end, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Errorf("socket ended with %v, want going away", c.end)
	}
	c.peer.Close()
	c.conn.Close()
	http.DefaultClient.CloseIdleConnections()
	goleak.VerifyNone(t, before)
}
