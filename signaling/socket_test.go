package signaling

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/config"
	"github.com/assist-video/assist/signaling/wire"
)

func TestWaitingRoomOverTheSocket(t *testing.T) {
	ts := newTestServer(t)
	s := ts.createSession(t)

	customer := ts.dial(t)
	customer.send(wire.TypeJoin, wire.Join{Token: linkToken(s.CustomerURL), Name: "Ann"})
	var welcome wire.Welcome
	customer.expect(wire.TypeWelcome, &welcome)
	if welcome.Role != "customer" || welcome.SessionID != s.ID {
		t.Fatalf("welcome = %+v", welcome)
	}
	var waiting wire.Waiting
	customer.expect(wire.TypeWaiting, &waiting)
	if waiting.Position != 1 {
		t.Fatalf("position = %d", waiting.Position)
	}

	t.Run("a waiting customer cannot send media", func(t *testing.T) {
		customer.send(wire.TypeDescription, wire.Description{Type: "offer", SDP: "v=0"})
		var e wire.Error
		customer.expect(wire.TypeError, &e)
		if e.Code != wire.CodeInvalidState {
			t.Fatalf("error = %+v", e)
		}
	})

	t.Run("a customer cannot admit themselves", func(t *testing.T) {
		customer.send(wire.TypeAdmit, wire.Admit{ParticipantID: welcome.ParticipantID})
		var e wire.Error
		customer.expect(wire.TypeError, &e)
		if e.Code != wire.CodeForbidden {
			t.Fatalf("error = %+v", e)
		}
	})

	specialist := ts.dial(t)
	specialist.send(wire.TypeJoin, wire.Join{Token: linkToken(s.SpecialistURL)})
	specialist.expect(wire.TypeWelcome, nil)
	var queue wire.Queue
	specialist.expect(wire.TypeQueue, &queue)
	if len(queue.Waiting) != 1 || queue.Waiting[0].Name != "Ann" || queue.Waiting[0].ParticipantID != welcome.ParticipantID {
		t.Fatalf("queue = %+v", queue)
	}

	specialist.send(wire.TypeAdmit, wire.Admit{ParticipantID: welcome.ParticipantID})
	customer.expect(wire.TypeAdmitted, nil)
	var roster wire.Participants
	customer.expect(wire.TypeParticipants, &roster)
	if len(roster.Participants) != 2 {
		t.Fatalf("roster = %+v", roster)
	}
	if got := ts.getSession(t, s.ID); got.State != api.SessionActive {
		t.Fatalf("session state = %s", got.State)
	}

	t.Run("admitting twice is refused", func(t *testing.T) {
		specialist.send(wire.TypeAdmit, wire.Admit{ParticipantID: welcome.ParticipantID})
		var e wire.Error
		specialist.expect(wire.TypeError, &e)
		if e.Code != wire.CodeInvalidState {
			t.Fatalf("error = %+v", e)
		}
	})

	specialist.send(wire.TypeEnd, wire.Empty{})
	customer.expect(wire.TypeSessionEnded, nil)
	specialist.expect(wire.TypeSessionEnded, nil)
	if got := ts.getSession(t, s.ID); got.State != api.SessionEnded || got.EndedAt == nil {
		t.Fatalf("session after end = %+v", got)
	}
}

func TestDeniedCustomerIsTurnedAway(t *testing.T) {
	ts := newTestServer(t)
	s := ts.createSession(t)
	customer := ts.dial(t)
	customer.send(wire.TypeJoin, wire.Join{Token: linkToken(s.CustomerURL)})
	var welcome wire.Welcome
	customer.expect(wire.TypeWelcome, &welcome)

	specialist := ts.dial(t)
	specialist.send(wire.TypeJoin, wire.Join{Token: linkToken(s.SpecialistURL)})
	specialist.expect(wire.TypeWelcome, nil)
	specialist.send(wire.TypeDeny, wire.Deny{ParticipantID: welcome.ParticipantID, Reason: "wrong department"})
	var denied wire.Denied
	customer.expect(wire.TypeDenied, &denied)
	if denied.Reason != "wrong department" {
		t.Fatalf("reason = %q", denied.Reason)
	}
	if _, err := customer.next(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("socket after deny: %v", err)
	}

	again := ts.dial(t)
	again.send(wire.TypeJoin, wire.Join{Token: linkToken(s.CustomerURL)})
	again.expect(wire.TypeDenied, nil)
}

func TestBadSocketInputGetsTypedErrors(t *testing.T) {
	ts := newTestServer(t)
	ts.joinTimeout = 300 * time.Millisecond
	s := ts.createSession(t)

	expectError := func(t *testing.T, sock *testSocket, code wire.ErrorCode) {
		t.Helper()
		var e wire.Error
		sock.expect(wire.TypeError, &e)
		if e.Code != code {
			t.Fatalf("error = %+v, want %s", e, code)
		}
	}

	t.Run("malformed and unknown messages are answered and the socket stays open", func(t *testing.T) {
		sock := ts.dial(t)
		sock.conn.WriteMessage(websocket.TextMessage, []byte("{not json"))
		expectError(t, sock, wire.CodeBadMessage)
		sock.send("teleport", wire.Empty{})
		expectError(t, sock, wire.CodeUnknownType)
		sock.send(wire.TypeAdmit, wire.Admit{ParticipantID: "par_x"})
		expectError(t, sock, wire.CodeUnauthorized)
		sock.send(wire.TypeJoin, wire.Join{Token: linkToken(s.CustomerURL)})
		sock.expect(wire.TypeWelcome, nil)
	})

	t.Run("an oversized message is refused", func(t *testing.T) {
		sock := ts.dial(t)
		sock.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"join","payload":{"token":"`+strings.Repeat("x", wire.MaxMessageSize)+`"}}`))
		expectError(t, sock, wire.CodeTooLarge)
	})

	t.Run("a huge message closes the socket with 1009", func(t *testing.T) {
		sock := ts.dial(t)
		sock.conn.WriteMessage(websocket.TextMessage, make([]byte, hardReadLimit+1))
		if _, err := sock.next(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
			t.Fatalf("got %v, want close 1009", err)
		}
	})

	t.Run("an expired token is refused", func(t *testing.T) {
		old := ts.issuer.At(func() time.Time { return time.Now().Add(-48 * time.Hour) })
		tok, _, _ := old.IssueLink(s.OrganizationID, s.ID, auth.RoleCustomer, time.Hour)
		sock := ts.dial(t)
		sock.send(wire.TypeJoin, wire.Join{Token: tok})
		expectError(t, sock, wire.CodeUnauthorized)
		if _, err := sock.next(); err == nil {
			t.Fatal("socket stayed open after a failed join")
		}
	})

	t.Run("a socket that never joins is closed", func(t *testing.T) {
		sock := ts.dial(t)
		expectError(t, sock, wire.CodeUnauthorized)
		if _, err := sock.next(); err == nil {
			t.Fatal("socket stayed open")
		}
	})

	t.Run("a flood of messages is rate limited", func(t *testing.T) {
		sock := ts.dial(t)
		for range messageBurst + 50 {
			sock.conn.WriteMessage(websocket.TextMessage, []byte("{}"))
		}
		for {
			var e wire.Error
			sock.expect(wire.TypeError, &e)
			if e.Code == wire.CodeRateLimited {
				return
			}
		}
	})

	t.Run("the server keeps serving", func(t *testing.T) {
		if resp := ts.do(t, "GET", "/healthz", "", nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz = %d", resp.StatusCode)
		}
	})
}

func TestShutdownTellsParticipantsAndDrains(t *testing.T) {
	cfg := config.Defaults()
	cfg.Addr, cfg.DataDir, cfg.BootstrapAPIKey, cfg.BootstrapPassword = "127.0.0.1:0", t.TempDir(), testAPIKey, testPassword
	cfg.ShutdownTimeout = 5 * time.Second
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := NewServer(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	ts := &testServer{Server: srv, URL: srv.URL(), APIKey: testAPIKey}
	s := ts.createSession(t)
	sock := ts.dial(t)
	sock.send(wire.TypeJoin, wire.Join{Token: linkToken(s.CustomerURL)})
	sock.expect(wire.TypeWaiting, nil)

	cancel()
	started := time.Now()
	for err == nil {
		_, err = sock.next()
	}
	if !websocket.IsCloseError(err, websocket.CloseServiceRestart) {
		t.Fatalf("participant was told %v, want close 1012 (service restart: reconnect)", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		t.Logf("shutdown took %v", time.Since(started))
	case <-time.After(cfg.ShutdownTimeout + 5*time.Second):
		t.Fatal("shutdown took longer than its timeout")
	}
	if resp, err := http.Get(ts.URL + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("still serving after shutdown")
	}
}

func TestDrainDelayTurnsReadinessOffBeforeTheNodeStopsServing(t *testing.T) {
	cfg := config.Defaults()
	cfg.Addr, cfg.DataDir, cfg.BootstrapAPIKey, cfg.BootstrapPassword = "127.0.0.1:0", t.TempDir(), testAPIKey, testPassword
	cfg.DrainDelay, cfg.ShutdownTimeout = 3*time.Second, 5*time.Second
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := NewServer(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	ts := &testServer{Server: srv, URL: srv.URL(), APIKey: testAPIKey}
	ts.waitStatus(t, "/readyz", http.StatusOK, 5*time.Second)

	cancel()
	ts.waitStatus(t, "/readyz", http.StatusServiceUnavailable, 2*time.Second)
	t.Run("during the delay the node still serves everything but readiness", func(t *testing.T) {
		for _, path := range []string{"/livez", "/healthz"} {
			if resp := ts.do(t, "GET", path, "", nil, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("%s = %d during the drain delay", path, resp.StatusCode)
			}
		}
		ts.createSession(t)
	})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(cfg.DrainDelay + cfg.ShutdownTimeout + 5*time.Second):
		t.Fatal("shutdown did not finish")
	}
	if resp, err := http.Get(ts.URL + "/livez"); err == nil {
		resp.Body.Close()
		t.Fatal("still serving after shutdown")
	}
}
