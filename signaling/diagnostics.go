package signaling

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/signaling/wire"
	"github.com/assist-video/assist/webclient"
)

// The setup test: a page (/test) that checks the camera, the microphone, the speaker and the
// network, and the echo socket (/v1/echo) its network check talks to. The echo socket needs no
// session: anyone may test their setup before they have a link. What it may cost is bounded:
// one echo per socket, a hard time limit on the socket, the per-address socket and request
// limits of /v1/signal, and at most max-sockets-per-session echo tests on a node at once. The
// customer page runs the same test while waiting and sends the result to the specialists as a
// kept `diagnostics` message (see tools.go).

// Echo socket timing.
const (
	// echoStartTimeout is how long a new echo socket has to send echo_start.
	echoStartTimeout = 10 * time.Second
	// echoSeconds is the echo's time when the client does not ask for less; echoMaxSeconds is
	// the most it may ask for.
	echoSeconds    = 20
	echoMaxSeconds = 30
	// echoOutboxSize holds the echo's answer and candidates; a client that does not read them
	// is disconnected.
	echoOutboxSize = 64
	// echoGaugeKey counts the node's running echo tests in the per-session socket gauge: all
	// of them together are held to one session's worth of sockets. Not a valid session ID.
	echoGaugeKey = "echo tests"
)

// routeDiagnostics registers the setup test page and its echo socket.
func (s *Server) routeDiagnostics(handle func(string, http.HandlerFunc)) {
	handle("GET /test", webclient.ServeDiagnostics)
	handle("GET /v1/echo", s.limitIP(s.limitSockets(s.handleEcho)))
}

func (s *Server) handleEcho(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if !s.limits.sessionSockets.acquire(echoGaugeKey) {
		tooMany(w, r, 5*time.Second, "too many setup tests are running: try again in a moment")
		return
	}
	var once sync.Once
	release := func() { once.Do(func() { s.limits.sessionSockets.release(echoGaugeKey) }) }
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		release()
		return // the upgrader has answered
	}
	t := &echoSocket{
		srv:     s,
		conn:    conn,
		log:     s.log.With("remote", r.RemoteAddr, "component", "echo"),
		outbox:  make(chan []byte, echoOutboxSize),
		inbox:   make(chan []byte),
		full:    make(chan struct{}),
		limiter: rate.NewLimiter(messageRate, messageBurst),
	}
	s.sockets.Add(1)
	go func() {
		defer s.sockets.Done()
		defer release()
		t.run(s.socketCtx)
	}()
}

// echoSocket is one echo test's socket: a reader, a writer, and the loop in run that owns
// the echo.
type echoSocket struct {
	srv     *Server
	conn    *websocket.Conn
	log     *slog.Logger
	limiter *rate.Limiter
	inbox   chan []byte

	mu       sync.Mutex // guards outbox against sends after it is closed
	outbox   chan []byte
	closed   bool
	full     chan struct{} // closed when the outbox overflowed
	fullOnce sync.Once
}

func (t *echoSocket) run(ctx context.Context) {
	t.conn.SetReadLimit(hardReadLimit)
	// Nothing a client does keeps the socket open longer than this.
	deadline := time.Now().Add(echoStartTimeout + echoMaxSeconds*time.Second + 5*time.Second)
	_ = t.conn.SetReadDeadline(deadline)
	quit := make(chan struct{})
	readerDone := make(chan struct{})
	go t.readLoop(quit, readerDone)
	writerDone := make(chan struct{})
	go t.writeLoop(writerDone)

	code, text := t.loop(ctx, deadline, readerDone)

	close(quit)
	t.closeOutbox()
	select {
	case <-writerDone: // what was queued (echo_ended, an error) goes before the close message
		_ = t.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, truncateReason(text)),
			time.Now().Add(writeTimeout))
	case <-time.After(writeTimeout):
	}
	_ = t.conn.Close()
	<-readerDone
}

// loop runs the test and returns how to close the socket.
func (t *echoSocket) loop(ctx context.Context, deadline time.Time, readerDone <-chan struct{}) (int, string) {
	var echo *media.Echo
	var echoDone <-chan struct{}
	defer func() {
		if echo != nil {
			echo.Close()
		}
	}()
	start := time.NewTimer(echoStartTimeout)
	defer start.Stop()
	hard := time.NewTimer(time.Until(deadline))
	defer hard.Stop()
	for {
		select {
		case <-ctx.Done():
			return websocket.CloseGoingAway, "server shutting down"
		case <-readerDone:
			return websocket.CloseNormalClosure, ""
		case <-t.full:
			return websocket.CloseTryAgainLater, "fell behind"
		case <-start.C:
			if echo == nil {
				t.send(wire.TypeError, wire.Errorf(wire.CodeInvalidState, "send echo_start within %s", echoStartTimeout))
				return websocket.ClosePolicyViolation, "no echo_start"
			}
		case <-hard.C:
			t.send(wire.TypeEchoEnded, wire.EchoEnded{Reason: "time_limit"})
			return websocket.CloseNormalClosure, "time limit"
		case <-echoDone:
			reason := "closed"
			if echo.Expired() {
				reason = "time_limit"
			}
			t.send(wire.TypeEchoEnded, wire.EchoEnded{Reason: reason})
			return websocket.CloseNormalClosure, reason
		case frame := <-t.inbox:
			if !t.limiter.Allow() {
				t.send(wire.TypeError, wire.Errorf(wire.CodeRateLimited, "too many messages: slow down"))
				continue
			}
			started, werr, stop := t.handle(ctx, frame, echo)
			if werr != nil {
				t.send(wire.TypeError, werr)
			}
			if started != nil {
				echo, echoDone = started, started.Done()
			}
			if stop {
				return websocket.ClosePolicyViolation, werr.Message
			}
		}
	}
}

// handle runs one client message. It returns the echo it started, if any, the error to send
// back, and whether the socket must close.
func (t *echoSocket) handle(ctx context.Context, frame []byte, echo *media.Echo) (*media.Echo, *wire.Error, bool) {
	typ, payload, err := wire.DecodeEcho(frame)
	if err != nil {
		return nil, err.(*wire.Error), false
	}
	switch m := payload.(type) {
	case *wire.EchoStart:
		if echo != nil {
			return nil, wire.Errorf(wire.CodeInvalidState, "one echo test per socket"), false
		}
		return t.start(ctx, m)
	case *wire.Description:
		if echo == nil {
			return nil, wire.Errorf(wire.CodeInvalidState, "send echo_start first"), false
		}
		if err := echo.HandleDescription(webrtc.SessionDescription{Type: webrtc.NewSDPType(m.Type), SDP: m.SDP}); err != nil {
			return nil, wire.Errorf(wire.CodeBadMessage, "description: %v", err), false
		}
	case *wire.Candidate:
		if echo == nil {
			return nil, wire.Errorf(wire.CodeInvalidState, "send echo_start first"), false
		}
		err := echo.HandleCandidate(webrtc.ICECandidateInit{Candidate: m.Candidate, SDPMid: m.SDPMid,
			SDPMLineIndex: m.SDPMLineIndex, UsernameFragment: m.UsernameFragment})
		if err != nil {
			return nil, wire.Errorf(wire.CodeBadMessage, "candidate: %v", err), false
		}
	default:
		return nil, wire.Errorf(wire.CodeUnknownType, "unexpected %s", typ), false
	}
	return nil, nil, false
}

// start checks the optional link, starts the echo and tells the client how to reach it.
func (t *echoSocket) start(ctx context.Context, m *wire.EchoStart) (*media.Echo, *wire.Error, bool) {
	servers, werr := t.srv.echoICEServers(ctx, m.Token)
	if werr != nil {
		return nil, werr, true
	}
	seconds := m.Seconds
	if seconds == 0 {
		seconds = echoSeconds
	}
	seconds = min(seconds, echoMaxSeconds)
	echo, err := t.srv.sfu.Echo(media.EchoConfig{
		Signaller: echoSignaller{t},
		Duration:  time.Duration(seconds) * time.Second,
		Logger:    t.log,
	})
	if err != nil {
		t.log.Warn("echo", "err", err)
		return nil, wire.Errorf(wire.CodeInternal, "the echo test cannot start now"), true
	}
	t.send(wire.TypeEchoReady, wire.EchoReady{ICEServers: servers, Seconds: seconds})
	return echo, nil, false
}

// echoICEServers are the STUN/TURN servers for an echo test. The embedded TURN server's
// credentials name a session, so they come only with a session link that is open now (the
// customer page passes its own); without one the test runs with the configured STUN/TURN
// servers only, and cannot tell whether the embedded relay would work.
func (s *Server) echoICEServers(ctx context.Context, token string) ([]wire.ICEServer, *wire.Error) {
	if token == "" {
		servers := []wire.ICEServer{}
		if len(s.cfg.ICEServers) > 0 {
			servers = append(servers, wire.ICEServer{URLs: s.cfg.ICEServers})
		}
		return append(servers, s.echoRelayServers()...), nil
	}
	claims, err := s.issuer.VerifyLink(token)
	if err != nil {
		return nil, wire.Errorf(wire.CodeUnauthorized, "token: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	sess, err := s.rooms.Session(ctx, claims.Org, claims.Subject)
	if err == nil {
		err = sess.LinkOpen(claims.IssuedAt.Time, time.Now())
	}
	if err != nil {
		return nil, wire.Errorf(wire.CodeForbidden, "the link is not open: %v", err)
	}
	return s.iceServersFor(claims.Org, claims.Subject), nil
}

func (t *echoSocket) readLoop(quit <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		kind, frame, err := t.conn.ReadMessage()
		if err != nil {
			return
		}
		if kind != websocket.TextMessage {
			t.send(wire.TypeError, wire.Errorf(wire.CodeBadMessage, "messages are JSON text frames"))
			continue
		}
		select {
		case t.inbox <- frame:
		case <-quit:
			return
		}
	}
}

func (t *echoSocket) writeLoop(done chan<- struct{}) {
	defer close(done)
	for frame := range t.outbox {
		_ = t.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := t.conn.WriteMessage(websocket.TextMessage, frame); err != nil {
			// Keep draining so that closeOutbox's close frame is not waited for in vain.
			for range t.outbox {
			}
			return
		}
	}
}

// send queues a message for the writer; it never blocks. A client that lets the outbox fill
// up is disconnected.
func (t *echoSocket) send(typ wire.Type, payload any) {
	frame, err := wire.Encode(typ, payload)
	if err != nil {
		t.log.Error("encode", "type", typ, "err", err)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	select {
	case t.outbox <- frame:
	default:
		t.fullOnce.Do(func() { close(t.full) })
	}
}

// closeOutbox stops further sends; the writer ends once it has written what is queued.
func (t *echoSocket) closeOutbox() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.closed = true
		close(t.outbox)
	}
}

// truncateReason keeps a close reason within the 123 bytes a close frame allows.
func truncateReason(s string) string {
	if len(s) > 120 {
		return s[:120]
	}
	return s
}

// echoSignaller carries the echo's answer and candidates to the socket.
type echoSignaller struct{ t *echoSocket }

func (s echoSignaller) SendDescription(d webrtc.SessionDescription) {
	s.t.send(wire.TypeDescription, wire.Description{Type: d.Type.String(), SDP: d.SDP})
}

func (s echoSignaller) SendCandidate(c webrtc.ICECandidateInit) {
	s.t.send(wire.TypeCandidate, wire.Candidate{Candidate: c.Candidate, SDPMid: c.SDPMid,
		SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment})
}
