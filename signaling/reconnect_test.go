package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/config"
	"github.com/assist-video/assist/signaling/wire"
)

// These tests drop, replace and abandon signaling sockets and check that a participant keeps
// their place: "reconnecting" to the others for a grace period, the same participant, the
// same place in the queue or the call when they come back with the same link.

// expectRoster reads cp's messages until a participants message satisfies ok.
func (cp *callPeer) expectRoster(what string, ok func(map[string]wire.RosterEntry) bool) {
	cp.t.Helper()
	timeout := time.After(15 * time.Second)
	var last []wire.RosterEntry
	for {
		select {
		case env, open := <-cp.events:
			if !open {
				cp.t.Fatalf("socket closed while waiting for a roster where %s (last %+v)", what, last)
			}
			if env.Type != wire.TypeParticipants {
				continue
			}
			var r wire.Participants
			_ = json.Unmarshal(env.Payload, &r)
			last = r.Participants
			byID := map[string]wire.RosterEntry{}
			for _, e := range r.Participants {
				byID[e.ParticipantID] = e
			}
			if ok(byID) {
				return
			}
		case <-timeout:
			cp.t.Fatalf("no roster where %s within 15s (last %+v)", what, last)
		}
	}
}

// rosterState is a roster predicate: the participant is listed in that state, or not listed
// when state is "".
func rosterState(id, state string) func(map[string]wire.RosterEntry) bool {
	return func(r map[string]wire.RosterEntry) bool {
		e, listed := r[id]
		if state == "" {
			return !listed
		}
		return listed && e.State == state
	}
}

// participantState reads a participant's state through the API.
func (ts *testServer) participantState(t *testing.T, sessionID, participantID string) string {
	t.Helper()
	for _, p := range ts.getSession(t, sessionID).Participants {
		if p.ID == participantID {
			return p.State
		}
	}
	return ""
}

// waitParticipantState polls the API until a participant is in a state.
func (ts *testServer) waitParticipantState(t *testing.T, sessionID, participantID, state string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := ts.participantState(t, sessionID, participantID)
		if got == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("participant %s is %q after %v, want %q", participantID, got, within, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// closedWith reads until the socket closes and returns the close error.
func (s *testSocket) closedWith() *websocket.CloseError {
	s.t.Helper()
	for {
		_, err := s.next()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			s.t.Fatalf("socket ended with %v, want a close frame", err)
		}
		return ce
	}
}

// nextState reads until the first message that says where the participant is: waiting,
// admitted, denied or session_ended.
func (cp *callPeer) nextState() wire.Type {
	cp.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case env, ok := <-cp.events:
			if !ok {
				cp.t.Fatal("socket closed before saying where the participant is")
			}
			switch env.Type {
			case wire.TypeWaiting, wire.TypeAdmitted, wire.TypeDenied, wire.TypeSessionEnded:
				return env.Type
			}
		case <-timeout:
			cp.t.Fatal("no waiting/admitted within 10s")
		}
	}
}

// callWithMedia brings a customer and a specialist into a call with media flowing both ways.
func callWithMedia(t *testing.T, ts *testServer, s api.Session) (customer, specialist *callPeer) {
	t.Helper()
	customer = ts.joinCall(t, linkToken(s.CustomerURL), "Ann")
	customer.expect(wire.TypeWaiting, nil)
	specialist = ts.joinCall(t, linkToken(s.SpecialistURL), "Sam")
	if err := specialist.peer.Start(); err != nil {
		t.Fatal(err)
	}
	specialist.expect(wire.TypeQueue, nil)
	specialist.write(wire.TypeAdmit, wire.Admit{ParticipantID: customer.id})
	customer.expect(wire.TypeAdmitted, nil)
	if err := customer.peer.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := customer.peer.WaitReceivedFrom(ctx, specialist.id, webrtc.RTPCodecTypeVideo, 30); err != nil {
		t.Fatalf("customer: %v", err)
	}
	if err := specialist.peer.WaitReceivedFrom(ctx, customer.id, webrtc.RTPCodecTypeVideo, 30); err != nil {
		t.Fatalf("specialist: %v", err)
	}
	return customer, specialist
}

func TestCustomerDropsMidCallAndResumes(t *testing.T) {
	ts := newTestServer(t)
	s := ts.createSession(t)
	customer, specialist := callWithMedia(t, ts, s)

	// The network goes: the socket closes without a goodbye and the media path dies with it.
	_ = customer.conn.Close()
	customer.peer.Close()
	specialist.expectRoster("the customer is reconnecting", rosterState(customer.id, "reconnecting"))
	if got := ts.participantState(t, s.ID, customer.id); got != "reconnecting" {
		t.Fatalf("API says the customer is %q, want reconnecting", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := specialist.peer.WaitLiveTracks(ctx, 0); err != nil {
		t.Fatalf("the dropped customer's tracks should end: %v", err)
	}
	before := specialist.peer.ReceivedPackets(webrtc.RTPCodecTypeVideo)

	back := ts.joinCall(t, linkToken(s.CustomerURL), "Ann")
	if back.id != customer.id {
		t.Fatalf("came back as %s, want the same participant %s", back.id, customer.id)
	}
	if got := back.nextState(); got != wire.TypeAdmitted {
		t.Fatalf("came back to %s, want admitted (no new admission)", got)
	}
	specialist.expectRoster("the customer is back in the call", rosterState(customer.id, "in_call"))
	if err := back.peer.Start(); err != nil { // the new offer, as the page makes on its new connection
		t.Fatal(err)
	}
	if err := back.peer.WaitReceivedFrom(ctx, specialist.id, webrtc.RTPCodecTypeVideo, 30); err != nil {
		t.Fatalf("the customer receives no video after coming back: %v", err)
	}
	if err := specialist.peer.WaitReceived(ctx, webrtc.RTPCodecTypeVideo, before+30); err != nil {
		t.Fatalf("the specialist receives no video from the customer after they came back: %v", err)
	}
	if err := specialist.peer.WaitReceivedFrom(ctx, customer.id, webrtc.RTPCodecTypeAudio, 30); err != nil {
		t.Fatalf("the specialist hears nothing: %v", err)
	}
	got := ts.getSession(t, s.ID)
	if got.State != api.SessionActive || len(got.Participants) != 2 {
		t.Fatalf("session after the reconnect = %+v", got)
	}
}

func TestWaitingCustomerKeepsPlaceAcrossReconnect(t *testing.T) {
	ts := newTestServer(t)
	s := ts.createSession(t)
	secondLink, _, err := ts.issuer.IssueLink(s.OrganizationID, s.ID, auth.RoleCustomer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	ann := ts.joinCall(t, linkToken(s.CustomerURL), "Ann")
	var w wire.Waiting
	ann.expect(wire.TypeWaiting, &w)
	bob := ts.joinCall(t, secondLink, "Bob")
	bob.expect(wire.TypeWaiting, &w)
	if w.Position != 2 {
		t.Fatalf("Bob is %d in the queue, want 2", w.Position)
	}
	specialist := ts.joinCall(t, linkToken(s.SpecialistURL), "Sam")
	var q wire.Queue
	specialist.expect(wire.TypeQueue, &q)
	if len(q.Waiting) != 2 || q.Waiting[0].ParticipantID != ann.id {
		t.Fatalf("queue = %+v", q)
	}

	_ = ann.conn.Close()
	ts.waitParticipantState(t, s.ID, ann.id, "reconnecting", 10*time.Second)
	bob.expect(wire.TypeWaiting, &w) // the event makes everyone look again
	if w.Position != 2 {
		t.Fatalf("Bob moved to %d while Ann reconnects, want 2: Ann keeps her place", w.Position)
	}

	annBack := ts.joinCall(t, linkToken(s.CustomerURL), "Ann")
	if annBack.id != ann.id {
		t.Fatalf("Ann came back as %s, want %s", annBack.id, ann.id)
	}
	annBack.expect(wire.TypeWaiting, &w)
	if w.Position != 1 {
		t.Fatalf("Ann came back at %d, want her place 1", w.Position)
	}

	t.Run("a customer admitted while reconnecting comes back into the call", func(t *testing.T) {
		_ = bob.conn.Close()
		ts.waitParticipantState(t, s.ID, bob.id, "reconnecting", 10*time.Second)
		specialist.write(wire.TypeAdmit, wire.Admit{ParticipantID: bob.id})
		bobBack := ts.joinCall(t, secondLink, "Bob")
		if got := bobBack.nextState(); got != wire.TypeAdmitted || bobBack.id != bob.id {
			t.Fatalf("Bob came back as %s to %s, want %s admitted", bobBack.id, got, bob.id)
		}
	})

	specialist.write(wire.TypeAdmit, wire.Admit{ParticipantID: ann.id})
	annBack.expect(wire.TypeAdmitted, nil)
}

func TestNewerSocketReplacesOlder(t *testing.T) {
	ts := newTestServer(t)
	s := ts.createSession(t)
	for _, c := range []struct{ role, link, state string }{
		{"customer", s.CustomerURL, "waiting"},
		{"specialist", s.SpecialistURL, "in_call"},
	} {
		t.Run("a "+c.role+"'s older socket is closed and does not mark them left", func(t *testing.T) {
			older := ts.dial(t)
			older.send(wire.TypeJoin, wire.Join{Token: linkToken(c.link)})
			var first wire.Welcome
			older.expect(wire.TypeWelcome, &first)

			newer := ts.dial(t)
			newer.send(wire.TypeJoin, wire.Join{Token: linkToken(c.link)})
			var second wire.Welcome
			newer.expect(wire.TypeWelcome, &second)
			if second.ParticipantID != first.ParticipantID {
				t.Fatalf("the newer socket is %s, want the same participant %s", second.ParticipantID, first.ParticipantID)
			}
			ce := older.closedWith()
			if ce.Code != closeReplaced || ce.Text != closeReplacedReason {
				t.Fatalf("older socket closed with %d %q, want %d %q", ce.Code, ce.Text, closeReplaced, closeReplacedReason)
			}
			// A socket records its end before its close frame goes out, so a wrong Leave or
			// Disconnect would show by now.
			if got := ts.participantState(t, s.ID, first.ParticipantID); got != c.state {
				t.Fatalf("after the older socket closed the %s is %q, want %q", c.role, got, c.state)
			}

			// The newer socket still speaks for them: its hang-up counts.
			newer.send(wire.TypeLeave, wire.Empty{})
			if ce := newer.closedWith(); ce.Code != websocket.CloseNormalClosure {
				t.Fatalf("leave closed with %d", ce.Code)
			}
			ts.waitParticipantState(t, s.ID, first.ParticipantID, "left", 5*time.Second)
		})
	}
}

func TestParticipantWhoDoesNotReturnIsMarkedLeft(t *testing.T) {
	ts := newTestServer(t)
	ts.rooms.SetReconnectGrace(time.Second)
	s := ts.createSession(t)

	customer := ts.dial(t)
	customer.send(wire.TypeJoin, wire.Join{Token: linkToken(s.CustomerURL)})
	var welcome wire.Welcome
	customer.expect(wire.TypeWelcome, &welcome)
	customer.expect(wire.TypeWaiting, nil)
	specialist := ts.joinCall(t, linkToken(s.SpecialistURL), "Sam")
	specialist.expect(wire.TypeQueue, nil)
	specialist.write(wire.TypeAdmit, wire.Admit{ParticipantID: welcome.ParticipantID})
	customer.expect(wire.TypeAdmitted, nil)
	specialist.expectRoster("the customer is in the call", rosterState(welcome.ParticipantID, "in_call"))

	dropped := time.Now()
	_ = customer.conn.Close()
	specialist.expectRoster("the customer is reconnecting", rosterState(welcome.ParticipantID, "reconnecting"))
	specialist.expectRoster("the customer is gone", rosterState(welcome.ParticipantID, ""))
	if waited := time.Since(dropped); waited < 900*time.Millisecond {
		t.Fatalf("the customer was dropped from the roster after %v, before the 1s grace", waited)
	}
	if got := ts.participantState(t, s.ID, welcome.ParticipantID); got != "left" {
		t.Fatalf("after the grace the customer is %q, want left", got)
	}

	t.Run("coming back later still needs no new admission", func(t *testing.T) {
		back := ts.joinCall(t, linkToken(s.CustomerURL), "Ann")
		if got := back.nextState(); got != wire.TypeAdmitted || back.id != welcome.ParticipantID {
			t.Fatalf("came back as %s to %s", back.id, got)
		}
		specialist.expectRoster("the customer is back", rosterState(welcome.ParticipantID, "in_call"))
	})
}

func TestHangingUpIsNotReconnecting(t *testing.T) {
	ts := newTestServer(t)
	s := ts.createSession(t)
	customer := ts.dial(t)
	customer.send(wire.TypeJoin, wire.Join{Token: linkToken(s.CustomerURL)})
	var welcome wire.Welcome
	customer.expect(wire.TypeWelcome, &welcome)
	customer.expect(wire.TypeWaiting, nil)
	customer.send(wire.TypeLeave, wire.Empty{})
	customer.closedWith()
	ts.waitParticipantState(t, s.ID, welcome.ParticipantID, "left", 5*time.Second)
}

func TestRestartExpiresParticipantsWhoDoNotReturn(t *testing.T) {
	cfg := config.Defaults()
	cfg.Addr, cfg.DataDir, cfg.NodeID = "127.0.0.1:0", t.TempDir(), "test"
	cfg.BootstrapAPIKey, cfg.BootstrapPassword = testAPIKey, testPassword
	cfg.ShutdownTimeout = 5 * time.Second
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	// The first run: a customer waits and a specialist is in the call when the node stops.
	ctx, stop := context.WithCancel(context.Background())
	srv, err := NewServer(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv.rooms.SetReconnectGrace(2 * time.Second)
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	first := &testServer{Server: srv, URL: srv.URL(), APIKey: testAPIKey}
	s := first.createSession(t)
	customer := first.dial(t)
	customer.send(wire.TypeJoin, wire.Join{Token: linkToken(s.CustomerURL)})
	var cw wire.Welcome
	customer.expect(wire.TypeWelcome, &cw)
	customer.expect(wire.TypeWaiting, nil)
	specialist := first.dial(t)
	specialist.send(wire.TypeJoin, wire.Join{Token: linkToken(s.SpecialistURL)})
	var sw wire.Welcome
	specialist.expect(wire.TypeWelcome, &sw)
	specialist.expect(wire.TypeQueue, nil)
	stop()
	if ce := customer.closedWith(); ce.Code != websocket.CloseServiceRestart {
		t.Fatalf("the customer was told %d, want 1012 (reconnect)", ce.Code)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	// The next run on the same data: nobody comes back, so both are marked left once the
	// grace the first run gave them is over; the session itself stays open.
	second := startTestServer(t, cfg)
	second.waitParticipantState(t, s.ID, cw.ParticipantID, "left", 15*time.Second)
	second.waitParticipantState(t, s.ID, sw.ParticipantID, "left", 5*time.Second)
	if got := second.getSession(t, s.ID); got.State != api.SessionWaiting {
		t.Fatalf("session after the restart = %s, want still waiting for its customer", got.State)
	}

	t.Run("a customer who comes back later keeps her place", func(t *testing.T) {
		back := second.dial(t)
		back.send(wire.TypeJoin, wire.Join{Token: linkToken(s.CustomerURL)})
		var w wire.Welcome
		back.expect(wire.TypeWelcome, &w)
		var pos wire.Waiting
		back.expect(wire.TypeWaiting, &pos)
		if w.ParticipantID != cw.ParticipantID || pos.Position != 1 {
			t.Fatalf("came back as %s at %d", w.ParticipantID, pos.Position)
		}
	})
}
