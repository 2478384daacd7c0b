package signaling

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/wire"
)

// waitingWhere reads s's messages until a waiting message satisfies ok, and returns it.
func (s *testSocket) waitingWhere(what string, ok func(wire.Waiting) bool) wire.Waiting {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last wire.Waiting
	for time.Now().Before(deadline) {
		env, err := s.next()
		if err != nil {
			s.t.Fatalf("waiting for a waiting message where %s (last %+v): %v", what, last, err)
		}
		if env.Type != wire.TypeWaiting {
			continue
		}
		last = wire.Waiting{}
		if err := json.Unmarshal(env.Payload, &last); err != nil {
			s.t.Fatalf("decode waiting: %v", err)
		}
		if ok(last) {
			return last
		}
	}
	s.t.Fatalf("no waiting message where %s within 15s (last %+v)", what, last)
	return last
}

// at is a waiting predicate: this place in a line of this length.
func at(position, length int) func(wire.Waiting) bool {
	return func(w wire.Waiting) bool { return w.Position == position && w.QueueLength == length }
}

// joinWaiting opens a socket and joins with a customer link.
func (ts *testServer) joinWaiting(t *testing.T, token, name string) (*testSocket, string) {
	t.Helper()
	sock := ts.dial(t)
	sock.send(wire.TypeJoin, wire.Join{Token: token, Name: name})
	var w wire.Welcome
	sock.expect(wire.TypeWelcome, &w)
	return sock, w.ParticipantID
}

// otherOrgLink makes a session in another organisation and a customer link to it.
func (ts *testServer) otherOrgLink(t *testing.T, orgID string) string {
	t.Helper()
	sess, err := ts.rooms.CreateSession(context.Background(), orgID)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := ts.issuer.IssueLink(orgID, sess.ID, auth.RoleCustomer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestWaitingPositionsSpanTheOrganisation(t *testing.T) {
	ts := newTestServer(t)
	first, second := ts.createSession(t), ts.createSession(t)

	ann, annID := ts.joinWaiting(t, linkToken(first.CustomerURL), "Ann")
	w := ann.waitingWhere("Ann is first of one", at(1, 1))
	if w.EstimatedWaitSeconds != nil {
		t.Fatalf("an estimate before anyone was admitted: %d s", *w.EstimatedWaitSeconds)
	}
	bob, _ := ts.joinWaiting(t, linkToken(second.CustomerURL), "Bob")
	bob.waitingWhere("Bob, in another session, is second of two", at(2, 2))
	ann.waitingWhere("Ann learns the line is two long", at(1, 2))

	t.Run("another organisation's line is its own", func(t *testing.T) {
		cat, _ := ts.joinWaiting(t, ts.otherOrgLink(t, "org_elsewhere"), "Cat")
		cat.waitingWhere("Cat is first of one in her organisation", at(1, 1))
	})

	// Ann is admitted in her session: Bob, in his, moves up and gets an estimate.
	specialist := ts.dial(t)
	specialist.send(wire.TypeJoin, wire.Join{Token: linkToken(first.SpecialistURL)})
	specialist.expect(wire.TypeWelcome, nil)
	specialist.send(wire.TypeAdmit, wire.Admit{ParticipantID: annID})
	ann.expect(wire.TypeAdmitted, nil)
	w = bob.waitingWhere("Bob is next, with an estimate", func(w wire.Waiting) bool {
		return w.Position == 1 && w.QueueLength == 1 && w.EstimatedWaitSeconds != nil
	})
	if *w.EstimatedWaitSeconds < 0 || *w.EstimatedWaitSeconds > 60 {
		t.Fatalf("estimate = %d s, want about how long Ann stood first (under a minute here)", *w.EstimatedWaitSeconds)
	}

	t.Run("a customer who reconnects keeps their place in the organisation's line", func(t *testing.T) {
		third := ts.createSession(t)
		dan, _ := ts.joinWaiting(t, linkToken(third.CustomerURL), "Dan")
		dan.waitingWhere("Dan is behind Bob", at(2, 2))
		_ = bob.conn.Close()
		bobID := ts.getSession(t, second.ID).Participants[0].ID
		ts.waitParticipantState(t, second.ID, bobID, "reconnecting", 10*time.Second)
		eveLink, _, err := ts.issuer.IssueLink(first.OrganizationID, first.ID, auth.RoleCustomer, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		late, _ := ts.joinWaiting(t, eveLink, "Eve")
		late.waitingWhere("Eve queues behind Bob, who is reconnecting, and Dan", at(3, 3))
		back, backID := ts.joinWaiting(t, linkToken(second.CustomerURL), "Bob")
		if backID != bobID {
			t.Fatalf("Bob came back as %s, want %s", backID, bobID)
		}
		back.waitingWhere("Bob is back at the head of the line", at(1, 3))
	})
}

func TestQueueTimeoutTellsTheCustomerOnce(t *testing.T) {
	cfg := testConfig(t)
	cfg.QueueTimeout = time.Second
	ts := startTestServer(t, cfg)
	s := ts.createSession(t)

	ann, _ := ts.joinWaiting(t, linkToken(s.CustomerURL), "Ann")
	started := time.Now()
	w := ann.waitingWhere("nobody could take the call yet", func(w wire.Waiting) bool { return w.TimedOut })
	if waited := time.Since(started); waited < 500*time.Millisecond {
		t.Fatalf("told after %v, want after the queue timeout (1s)", waited)
	}
	if w.Position != 1 {
		t.Fatalf("timed out at %d, want still first: keeping waiting keeps the place", w.Position)
	}

	// The line changes: Ann is told her place again, without the notice.
	other := ts.createSession(t)
	ts.joinWaiting(t, linkToken(other.CustomerURL), "Bob")
	if w := ann.waitingWhere("the line grew", at(1, 2)); w.TimedOut {
		t.Fatal("the timeout notice came twice")
	}

	t.Run("leaving a message is a chat the specialist sees", func(t *testing.T) {
		ann.send(wire.TypeChat, wire.ChatSend{Text: "Please call me back at 5"})
		ann.expect(wire.TypeChat, nil)
		specialist := ts.dial(t)
		specialist.send(wire.TypeJoin, wire.Join{Token: linkToken(s.SpecialistURL)})
		var h wire.History
		specialist.expect(wire.TypeHistory, &h)
		if len(h.Entries) != 1 || !strings.Contains(string(h.Entries[0].Payload), "call me back") {
			t.Fatalf("history = %+v", h)
		}
	})

	t.Run("a customer coming back after the timeout is told again", func(t *testing.T) {
		_ = ann.conn.Close()
		back, _ := ts.joinWaiting(t, linkToken(s.CustomerURL), "Ann")
		if w := back.waitingWhere("told on the new page", func(w wire.Waiting) bool { return w.TimedOut }); w.Position != 1 {
			t.Fatalf("came back at %d, want 1", w.Position)
		}
	})
}
