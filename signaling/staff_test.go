package signaling

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/config"
	"github.com/assist-video/assist/signaling/wire"
)

// staffMember is a specialist of the tests with a console token.
type staffMember struct {
	id, name, orgID, token string
}

func (ts *testServer) addStaff(t *testing.T, orgID, name string) staffMember {
	t.Helper()
	ctx := context.Background()
	if orgID == "" {
		orgID = ts.Bootstrap().OrganizationID
	}
	hash, _ := auth.HashPassword("a long password of " + name)
	sp, err := ts.rooms.CreateSpecialist(ctx, orgID, strings.ToLower(name)+"-"+rooms.NewConnectionID()+"@example.com", name, hash, rooms.StaffSpecialist)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := ts.issuer.IssueConsole(orgID, sp.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return staffMember{id: sp.ID, name: name, orgID: orgID, token: token}
}

// staffSocket is a console's staff socket in a test: a reader goroutine keeps every frame.
type staffSocket struct {
	t      *testing.T
	conn   *websocket.Conn
	frames chan wire.Envelope
	closed chan struct{}
	// lastQueue is the latest org_queue consumed, kept even when an expect passed over it:
	// the queue is state, its latest message the truth.
	lastQueue json.RawMessage
}

func (ts *testServer) dialStaff(t *testing.T) *staffSocket {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/v1/staff", nil)
	if err != nil {
		t.Fatalf("dial /v1/staff: %v", err)
	}
	s := &staffSocket{t: t, conn: conn, frames: make(chan wire.Envelope, 1024), closed: make(chan struct{})}
	go func() {
		defer close(s.closed)
		for {
			var env wire.Envelope
			if err := conn.ReadJSON(&env); err != nil {
				return
			}
			s.frames <- env
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return s
}

// openConsole dials the staff socket and signs in.
func (ts *testServer) openConsole(t *testing.T, m staffMember) *staffSocket {
	t.Helper()
	s := ts.dialStaff(t)
	s.send(wire.TypeStaffHello, wire.StaffHello{Token: m.token})
	var w wire.StaffWelcome
	s.expect(wire.TypeStaffWelcome, &w, nil)
	if w.SpecialistID != m.id || w.OrganizationID != m.orgID {
		t.Fatalf("welcome %+v for %+v", w, m)
	}
	return s
}

func (s *staffSocket) send(typ wire.Type, payload any) {
	s.t.Helper()
	raw, _ := json.Marshal(payload)
	if err := s.conn.WriteJSON(wire.Envelope{Type: typ, Payload: raw}); err != nil {
		s.t.Fatalf("send %s: %v", typ, err)
	}
}

// expect waits (10 s at most) for a frame of type typ that match accepts (nil: any), decoded
// into out; frames before it are dropped.
func (s *staffSocket) expect(typ wire.Type, out any, match func(json.RawMessage) bool) {
	s.t.Helper()
	if !s.await(typ, out, match, 10*time.Second) {
		s.t.Fatalf("no %s within 10s", typ)
	}
}

func (s *staffSocket) await(typ wire.Type, out any, match func(json.RawMessage) bool, within time.Duration) bool {
	s.t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		select {
		case env := <-s.frames:
			if env.Type == wire.TypeOrgQueue {
				s.lastQueue = env.Payload
			}
			if env.Type != typ || (match != nil && !match(env.Payload)) {
				continue
			}
			if out != nil {
				if err := json.Unmarshal(env.Payload, out); err != nil {
					s.t.Fatalf("decode %s: %v", typ, err)
				}
			}
			return true
		case <-s.closed:
			return false
		case <-deadline.C:
			return false
		}
	}
}

// presenceOf waits until the presence list shows who with status.
func (s *staffSocket) presenceOf(who staffMember, status string) {
	s.t.Helper()
	s.expect(wire.TypePresence, nil, func(raw json.RawMessage) bool {
		var p wire.Presence
		_ = json.Unmarshal(raw, &p)
		for _, e := range p.Specialists {
			if e.SpecialistID == who.id {
				return e.Status == status
			}
		}
		return false
	})
}

// waitAuditEvent polls the audit trail until an event matches.
func waitAuditEvent(t *testing.T, ts *testServer, action string, match func(audit.Event) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var seen []audit.Event
		for after := ""; ; {
			var page struct {
				Data       []audit.Event `json:"data"`
				NextCursor string        `json:"next_cursor"`
			}
			path := "/v1/audit-events?action=" + url.QueryEscape(action)
			if after != "" {
				path += "&starting_after=" + url.QueryEscape(after)
			}
			ts.do(t, "GET", path, ts.APIKey, nil, &page)
			seen = append(seen, page.Data...)
			if page.NextCursor == "" || page.NextCursor == after {
				break
			}
			after = page.NextCursor
		}
		for _, e := range seen {
			if match(e) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching %s event in %+v", action, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// twoNodes starts two Assist nodes sharing one NATS server.
func twoNodes(t *testing.T, tune func(*config.Config)) (*testServer, *testServer) {
	t.Helper()
	nats := startExternalNATS(t)
	var nodes []*testServer
	for _, id := range []string{"node-a", "node-b"} {
		cfg := testConfig(t)
		cfg.NATSURL, cfg.NodeID = nats.url(), id
		if tune != nil {
			tune(&cfg)
		}
		nodes = append(nodes, startTestServer(t, cfg))
	}
	return nodes[0], nodes[1]
}

func TestStaffSocketSignsInAndCarriesNoticesAcrossNodes(t *testing.T) {
	a, b := twoNodes(t, nil)
	ann := a.addStaff(t, "", "Ann")
	bob := a.addStaff(t, "", "Bob")
	other, err := a.rooms.CreateOrganization(context.Background(), "Other")
	if err != nil {
		t.Fatal(err)
	}
	eve := a.addStaff(t, other.ID, "Eve")

	t.Run("a bad token is refused and the socket closes", func(t *testing.T) {
		s := a.dialStaff(t)
		s.send(wire.TypeStaffHello, wire.StaffHello{Token: "not-a-token"})
		var e wire.Error
		s.expect(wire.TypeError, &e, nil)
		if e.Code != wire.CodeUnauthorized {
			t.Fatalf("error %+v", e)
		}
		select {
		case <-s.closed:
		case <-time.After(10 * time.Second):
			t.Fatal("the socket stayed open")
		}
	})
	t.Run("nothing but staff_hello is accepted first", func(t *testing.T) {
		s := a.dialStaff(t)
		s.send(wire.TypePresenceSet, wire.PresenceSet{Status: "away"})
		var e wire.Error
		s.expect(wire.TypeError, &e, nil)
		if e.Code != wire.CodeUnauthorized {
			t.Fatalf("error %+v", e)
		}
	})

	annConsole := a.openConsole(t, ann) // on node A
	bobConsole := b.openConsole(t, bob) // on node B
	eveConsole := b.openConsole(t, eve)

	t.Run("a notice to one specialist reaches them on another node, and only them", func(t *testing.T) {
		a.notifyStaff(ann.orgID, bob.id, wire.TypeSessionAssigned, wire.SessionAssigned{SessionID: "ses_for_bob", By: ann.id})
		var got wire.SessionAssigned
		bobConsole.expect(wire.TypeSessionAssigned, &got, nil)
		if got.SessionID != "ses_for_bob" {
			t.Fatalf("got %+v", got)
		}
		a.notifyStaff(ann.orgID, "", wire.TypeSessionAssigned, wire.SessionAssigned{SessionID: "ses_for_all"})
		for _, c := range []*staffSocket{annConsole, bobConsole} {
			c.expect(wire.TypeSessionAssigned, &got, nil)
			if got.SessionID != "ses_for_all" {
				t.Fatalf("ann or bob got %+v first", got)
			}
		}
		if eveConsole.await(wire.TypeSessionAssigned, nil, nil, 300*time.Millisecond) {
			t.Fatal("a specialist of another organisation got the notice")
		}
	})
	t.Run("unknown and malformed messages get typed errors", func(t *testing.T) {
		annConsole.send("no_such_type", struct{}{})
		var e wire.Error
		annConsole.expect(wire.TypeError, &e, nil)
		if e.Code != wire.CodeUnknownType {
			t.Fatalf("error %+v", e)
		}
		annConsole.send(wire.TypePresenceSet, wire.PresenceSet{Status: "offline"})
		annConsole.expect(wire.TypeError, &e, nil)
		if e.Code != wire.CodeBadMessage {
			t.Fatalf("error %+v", e)
		}
	})
}

func TestPresenceTransitions(t *testing.T) {
	a, b := twoNodes(t, func(c *config.Config) { c.PresenceOfflineGrace = time.Second })
	ann := a.addStaff(t, "", "Ann")
	bob := b.addStaff(t, ann.orgID, "Bob")
	bobConsole := b.openConsole(t, bob)

	t.Run("a specialist without a console is offline", func(t *testing.T) {
		bobConsole.presenceOf(ann, wire.PresenceOffline)
	})
	annConsole := a.openConsole(t, ann)
	t.Run("opening the console makes them available to colleagues on another node", func(t *testing.T) {
		bobConsole.presenceOf(ann, wire.PresenceAvailable)
		annConsole.presenceOf(bob, wire.PresenceAvailable)
	})
	t.Run("away and busy by hand, from the console and from the API", func(t *testing.T) {
		annConsole.send(wire.TypePresenceSet, wire.PresenceSet{Status: wire.PresenceAway})
		bobConsole.presenceOf(ann, wire.PresenceAway)
		var me wire.PresenceEntry
		if resp := a.do(t, "PUT", "/v1/presence/me", ann.token, presenceUpdate{Status: "busy"}, &me); resp.StatusCode != 200 || me.Status != "busy" {
			t.Fatalf("PUT /v1/presence/me: %d %+v", resp.StatusCode, me)
		}
		bobConsole.presenceOf(ann, wire.PresenceBusy)
		if resp := a.do(t, "PUT", "/v1/presence/me", ann.token, presenceUpdate{Status: "offline"}, nil); resp.StatusCode != 400 {
			t.Fatalf("offline by hand: %d, want 400", resp.StatusCode)
		}
		if resp := a.do(t, "PUT", "/v1/presence/me", a.APIKey, presenceUpdate{Status: "away"}, nil); resp.StatusCode != 403 {
			t.Fatalf("an API key setting presence: %d, want 403", resp.StatusCode)
		}
		a.do(t, "PUT", "/v1/presence/me", ann.token, presenceUpdate{Status: "available"}, nil)
		bobConsole.presenceOf(ann, wire.PresenceAvailable)
	})
	t.Run("joining a session makes them busy, leaving makes them available again", func(t *testing.T) {
		sess := a.createSession(t)
		call := a.dial(t)
		call.send(wire.TypeJoin, wire.Join{Token: ann.token, SessionID: sess.ID})
		call.expect(wire.TypeWelcome, nil)
		bobConsole.presenceOf(ann, wire.PresenceBusy)
		var list presenceList
		b.do(t, "GET", "/v1/presence", b.APIKey, nil, &list)
		found := false
		for _, e := range list.Data {
			if e.SpecialistID == ann.id {
				found = true
				if e.Status != wire.PresenceBusy || !e.InSession || e.Manual != wire.PresenceAvailable {
					t.Fatalf("GET /v1/presence: %+v", e)
				}
			}
		}
		if !found {
			t.Fatalf("ann is not in GET /v1/presence: %+v", list)
		}
		call.send(wire.TypeLeave, wire.Empty{})
		bobConsole.presenceOf(ann, wire.PresenceAvailable)
	})
	t.Run("closing the console makes them offline after the grace", func(t *testing.T) {
		annConsole.conn.Close()
		closedAt := time.Now()
		bobConsole.presenceOf(ann, wire.PresenceOffline)
		if waited := time.Since(closedAt); waited < 900*time.Millisecond {
			t.Fatalf("offline after %s, before the 1s grace", waited)
		}
	})
	t.Run("a reload within the grace does not go offline", func(t *testing.T) {
		bobConsole.conn.Close()
		again := b.openConsole(t, bob)
		again.presenceOf(bob, wire.PresenceAvailable)
		if again.await(wire.TypePresence, nil, func(raw json.RawMessage) bool {
			var p wire.Presence
			_ = json.Unmarshal(raw, &p)
			for _, e := range p.Specialists {
				if e.SpecialistID == bob.id {
					return e.Status != wire.PresenceAvailable
				}
			}
			return false
		}, 1500*time.Millisecond) {
			t.Fatal("bob's presence changed while his console was open")
		}
	})
}

func TestTeamChatHistoryUnreadAndIsolation(t *testing.T) {
	a, b := twoNodes(t, nil)
	ann := a.addStaff(t, "", "Ann")
	bob := a.addStaff(t, "", "Bob")
	cat := a.addStaff(t, "", "Cat")
	other, err := a.rooms.CreateOrganization(context.Background(), "Other")
	if err != nil {
		t.Fatal(err)
	}
	eve := a.addStaff(t, other.ID, "Eve")
	annConsole := a.openConsole(t, ann)
	bobConsole := b.openConsole(t, bob)
	eveConsole := b.openConsole(t, eve)

	t.Run("a team message reaches every colleague's console", func(t *testing.T) {
		annConsole.send(wire.TypeTeamSend, wire.TeamSend{To: "team", Text: "Stand-up in five"})
		var got wire.TeamMessage
		bobConsole.expect(wire.TypeTeamMessage, &got, nil)
		if got.Channel != "team" || got.From != ann.id || got.FromName != "Ann" || got.Text != "Stand-up in five" || got.Seq == 0 {
			t.Fatalf("bob got %+v", got)
		}
		annConsole.expect(wire.TypeTeamMessage, &got, nil) // the sender's other consoles see it too
	})
	t.Run("a one-to-one message reaches both, named by the other one", func(t *testing.T) {
		bobConsole.send(wire.TypeTeamSend, wire.TeamSend{To: ann.id, Text: "Can you take the next one?"})
		var got wire.TeamMessage
		annConsole.expect(wire.TypeTeamMessage, &got, nil)
		if got.Channel != bob.id || got.To != ann.id {
			t.Fatalf("ann got %+v", got)
		}
		bobConsole.expect(wire.TypeTeamMessage, &got, func(raw json.RawMessage) bool { return strings.Contains(string(raw), "next one") })
		if got.Channel != ann.id {
			t.Fatalf("bob got %+v", got)
		}
	})
	t.Run("the API keeps history and unread counts", func(t *testing.T) {
		var list teamMessageList
		if resp := a.do(t, "GET", "/v1/team/messages", ann.token, nil, &list); resp.StatusCode != 200 {
			t.Fatalf("GET /v1/team/messages: %d", resp.StatusCode)
		}
		if len(list.Data) != 2 || list.Unread[bob.id] != 1 || list.Unread["team"] != 0 {
			t.Fatalf("ann's messages %+v", list)
		}
		var catList teamMessageList
		a.do(t, "GET", "/v1/team/messages", cat.token, nil, &catList)
		if len(catList.Data) != 1 || catList.Data[0].Channel != "team" || catList.Unread["team"] != 1 {
			t.Fatalf("cat sees %+v: the team message and not the others' one-to-one", catList)
		}
		var posted wire.TeamMessage
		if resp := a.do(t, "POST", "/v1/team/messages", cat.token, teamPost{To: ann.id, Text: "Hello Ann"}, &posted); resp.StatusCode != 201 {
			t.Fatalf("POST /v1/team/messages: %d", resp.StatusCode)
		}
		annConsole.expect(wire.TypeTeamMessage, nil, func(raw json.RawMessage) bool { return strings.Contains(string(raw), "Hello Ann") })
	})
	t.Run("reading a channel clears its unread count on every console", func(t *testing.T) {
		var list teamMessageList
		a.do(t, "GET", "/v1/team/messages?channel="+bob.id, ann.token, nil, &list)
		if len(list.Data) != 1 {
			t.Fatalf("the channel with bob: %+v", list.Data)
		}
		annConsole.send(wire.TypeTeamRead, wire.TeamRead{Channel: bob.id, Seq: list.Data[0].Seq})
		var unread wire.TeamUnread
		annConsole.expect(wire.TypeTeamUnread, &unread, nil)
		if unread.Unread[bob.id] != 0 || unread.Unread[cat.id] != 1 {
			t.Fatalf("unread after reading bob's channel: %+v", unread)
		}
		var after wire.TeamUnread
		if resp := a.do(t, "PUT", "/v1/team/read", ann.token, teamReadRequest{Channel: cat.id, Seq: 1 << 40}, &after); resp.StatusCode != 200 || len(after.Unread) != 0 {
			t.Fatalf("PUT /v1/team/read: %d %+v", resp.StatusCode, after)
		}
	})
	t.Run("a console opened later gets the history and unread counts", func(t *testing.T) {
		catConsole := b.openConsole(t, cat)
		var m wire.TeamMessage
		catConsole.expect(wire.TypeTeamMessage, &m, nil)
		if !m.History || m.Text != "Stand-up in five" {
			t.Fatalf("history %+v", m)
		}
		var unread wire.TeamUnread
		catConsole.expect(wire.TypeTeamUnread, &unread, nil)
		if unread.Unread["team"] != 1 {
			t.Fatalf("cat's unread %+v", unread)
		}
	})
	t.Run("another organisation neither reads nor writes", func(t *testing.T) {
		var e wire.Error
		eveConsole.send(wire.TypeTeamSend, wire.TeamSend{To: ann.id, Text: "hi"})
		eveConsole.expect(wire.TypeError, &e, nil)
		if e.Code != wire.CodeNotFound {
			t.Fatalf("eve writing to ann: %+v", e)
		}
		if resp := a.do(t, "POST", "/v1/team/messages", eve.token, teamPost{To: ann.id, Text: "hi"}, nil); resp.StatusCode != 404 {
			t.Fatalf("eve posting to ann: %d", resp.StatusCode)
		}
		var list teamMessageList
		a.do(t, "GET", "/v1/team/messages", eve.token, nil, &list)
		if len(list.Data) != 0 {
			t.Fatalf("eve sees %+v", list.Data)
		}
		if eveConsole.await(wire.TypeTeamMessage, nil, nil, 300*time.Millisecond) {
			t.Fatal("eve's console got a message of another organisation")
		}
		if resp := a.do(t, "GET", "/v1/team/messages", a.APIKey, nil, nil); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("an API key reading the chat: %d", resp.StatusCode)
		}
	})
}

// queueWhere waits until the latest org_queue satisfies match.
func (s *staffSocket) queueWhere(match func(wire.OrgQueue) bool) {
	s.t.Helper()
	matches := func(raw json.RawMessage) bool {
		var q wire.OrgQueue
		_ = json.Unmarshal(raw, &q)
		return match(q)
	}
	if s.lastQueue != nil && matches(s.lastQueue) {
		return
	}
	s.expect(wire.TypeOrgQueue, nil, matches)
}

// queueEntry waits for an org_queue in which match finds an entry, and returns it.
func (s *staffSocket) queueEntry(match func(wire.OrgQueueEntry) bool) (wire.OrgQueue, wire.OrgQueueEntry) {
	s.t.Helper()
	var q wire.OrgQueue
	var found wire.OrgQueueEntry
	matches := func(raw json.RawMessage) bool {
		var x wire.OrgQueue
		_ = json.Unmarshal(raw, &x)
		for _, e := range x.Waiting {
			if match(e) {
				found = e
				return true
			}
		}
		return false
	}
	if s.lastQueue != nil && matches(s.lastQueue) {
		_ = json.Unmarshal(s.lastQueue, &q)
		return q, found
	}
	s.expect(wire.TypeOrgQueue, &q, matches)
	return q, found
}

func TestOrgQueueIsLiveAndAdmitsFromTheConsole(t *testing.T) {
	a, b := twoNodes(t, nil)
	ann := a.addStaff(t, "", "Ann")
	bob := a.addStaff(t, "", "Bob")
	annConsole := a.openConsole(t, ann)
	bobConsole := b.openConsole(t, bob)

	first, second := a.createSession(t), a.createSession(t)
	carl := b.dial(t) // the customers' sockets are on the other node
	carl.send(wire.TypeJoin, wire.Join{Token: linkToken(first.CustomerURL), Name: "Carl"})
	carl.expect(wire.TypeWaiting, nil)
	dora := a.dial(t)
	dora.send(wire.TypeJoin, wire.Join{Token: linkToken(second.CustomerURL), Name: "Dora"})
	dora.expect(wire.TypeWaiting, nil)

	t.Run("every waiting customer of the organisation appears, in order of arrival", func(t *testing.T) {
		for _, c := range []*staffSocket{annConsole, bobConsole} {
			q, _ := c.queueEntry(func(e wire.OrgQueueEntry) bool { return e.Name == "Dora" })
			if len(q.Waiting) != 2 || q.Waiting[0].Name != "Carl" || q.Waiting[0].SessionID != first.ID ||
				q.Waiting[0].Position != 1 || q.Waiting[1].Position != 2 || q.Waiting[0].Kind != "ad_hoc" || q.Waiting[0].Since == "" {
				t.Fatalf("queue %+v", q)
			}
		}
		var now wire.OrgQueue
		if resp := a.do(t, "GET", "/v1/queue", a.APIKey, nil, &now); resp.StatusCode != 200 || len(now.Waiting) != 2 {
			t.Fatalf("GET /v1/queue: %d %+v", resp.StatusCode, now)
		}
	})
	t.Run("the device-check verdict shows next to the customer", func(t *testing.T) {
		carl.send(wire.TypeDiagnostics, goodDiagnostics())
		bobConsole.queueEntry(func(e wire.OrgQueueEntry) bool { return e.Name == "Carl" && e.Diagnostics == wire.VerdictGood })
	})
	t.Run("two specialists admitting at once: exactly one wins", func(t *testing.T) {
		admit := wire.QueueAdmit{SessionID: first.ID, ParticipantID: participantIDOf(t, a, first.ID, "Carl")}
		annConsole.send(wire.TypeQueueAdmit, admit)
		bobConsole.send(wire.TypeQueueAdmit, admit)
		wins := 0
		for _, c := range []*staffSocket{annConsole, bobConsole} {
			deadline := time.After(10 * time.Second)
		answer:
			for {
				select {
				case env := <-c.frames:
					switch env.Type {
					case wire.TypeOrgQueue:
						c.lastQueue = env.Payload
					case wire.TypeStaffDone:
						wins++
						break answer
					case wire.TypeError:
						var e wire.Error
						_ = json.Unmarshal(env.Payload, &e)
						if e.Code != wire.CodeInvalidState {
							t.Fatalf("the loser got %+v", e)
						}
						break answer
					}
				case <-deadline:
					t.Fatal("no answer to queue_admit")
				}
			}
		}
		if wins != 1 {
			t.Fatalf("%d admissions won", wins)
		}
		carl.expect(wire.TypeAdmitted, nil)
		waitAuditEvent(t, a, audit.ActionParticipantAdmit, func(e audit.Event) bool { return e.SessionID == first.ID })
		annConsole.queueWhere(func(q wire.OrgQueue) bool {
			return len(q.Waiting) == 1 && q.Waiting[0].Name == "Dora" && q.Waiting[0].Position == 1
		})
	})
	t.Run("turning a customer away from the queue tells them the reason", func(t *testing.T) {
		bobConsole.send(wire.TypeQueueDeny, wire.QueueDeny{SessionID: second.ID, ParticipantID: participantIDOf(t, a, second.ID, "Dora"), Reason: "Closed today"})
		var d wire.Denied
		dora.expect(wire.TypeDenied, &d)
		if d.Reason != "Closed today" {
			t.Fatalf("denied %+v", d)
		}
		annConsole.queueWhere(func(q wire.OrgQueue) bool { return len(q.Waiting) == 0 })
	})
	t.Run("a session of another organisation cannot be admitted", func(t *testing.T) {
		other, _ := a.rooms.CreateOrganization(context.Background(), "Other")
		eve := a.addStaff(t, other.ID, "Eve")
		eveConsole := a.openConsole(t, eve)
		third := a.createSession(t)
		fred := a.dial(t)
		fred.send(wire.TypeJoin, wire.Join{Token: linkToken(third.CustomerURL), Name: "Fred"})
		fred.expect(wire.TypeWaiting, nil)
		eveConsole.send(wire.TypeQueueAdmit, wire.QueueAdmit{SessionID: third.ID, ParticipantID: participantIDOf(t, a, third.ID, "Fred")})
		var e wire.Error
		eveConsole.expect(wire.TypeError, &e, nil)
		if e.Code != wire.CodeNotFound {
			t.Fatalf("eve admitting: %+v", e)
		}
		if eveConsole.await(wire.TypeOrgQueue, nil, func(raw json.RawMessage) bool { return strings.Contains(string(raw), "Fred") }, 300*time.Millisecond) {
			t.Fatal("eve sees another organisation's customer")
		}
	})
}

// participantIDOf finds a participant of a session by name.
func participantIDOf(t *testing.T, ts *testServer, sessionID, name string) string {
	t.Helper()
	for _, p := range ts.getSession(t, sessionID).Participants {
		if p.Name == name {
			return p.ID
		}
	}
	t.Fatalf("no %s in %s", name, sessionID)
	return ""
}

func TestTransferAssignsTheWaitingCustomerToAColleague(t *testing.T) {
	a, b := twoNodes(t, nil)
	ann := a.addStaff(t, "", "Ann")
	bob := a.addStaff(t, "", "Bob")
	annConsole := a.openConsole(t, ann)
	bobConsole := b.openConsole(t, bob)
	first, second := a.createSession(t), a.createSession(t)
	carl := a.dial(t)
	carl.send(wire.TypeJoin, wire.Join{Token: linkToken(first.CustomerURL), Name: "Carl"})
	carl.expect(wire.TypeWaiting, nil)
	dora := a.dial(t)
	dora.send(wire.TypeJoin, wire.Join{Token: linkToken(second.CustomerURL), Name: "Dora"})
	dora.expect(wire.TypeWaiting, nil)
	bobConsole.queueEntry(func(e wire.OrgQueueEntry) bool { return e.Name == "Dora" })

	annConsole.send(wire.TypeQueueTransfer, wire.QueueTransfer{SessionID: second.ID, SpecialistID: bob.id})
	annConsole.expect(wire.TypeStaffDone, nil, nil)
	t.Run("the colleague is told on their console", func(t *testing.T) {
		var n wire.SessionAssigned
		bobConsole.expect(wire.TypeSessionAssigned, &n, nil)
		if n.SessionID != second.ID || n.By != ann.id || n.ByName != "Ann" || n.WaitingFor != "Dora" {
			t.Fatalf("notice %+v", n)
		}
	})
	t.Run("and sees the session first in their queue; others see whom it is assigned to", func(t *testing.T) {
		q, _ := bobConsole.queueEntry(func(e wire.OrgQueueEntry) bool { return e.AssignedTo == bob.id })
		if q.Waiting[0].Name != "Dora" || q.Waiting[0].AssignedToName != "Bob" || q.Waiting[0].Position != 2 {
			t.Fatalf("bob's queue %+v", q)
		}
		q, _ = annConsole.queueEntry(func(e wire.OrgQueueEntry) bool { return e.AssignedTo == bob.id })
		if q.Waiting[0].Name != "Carl" {
			t.Fatalf("ann's queue %+v", q)
		}
	})
	t.Run("the transfer is audited", func(t *testing.T) {
		waitAuditEvent(t, a, ActionSessionTransfer, func(e audit.Event) bool {
			return e.SessionID == second.ID && e.Target == bob.id && e.Actor.ID == ann.id
		})
	})
	t.Run("the customer keeps waiting undisturbed", func(t *testing.T) {
		_ = dora.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		for {
			env, err := dora.next()
			if err != nil {
				break // nothing more arrived
			}
			if env.Type != wire.TypeWaiting {
				t.Fatalf("the customer got %s", env.Type)
			}
		}
		if got := a.getSession(t, second.ID); got.State != "waiting" || got.AssignedTo != bob.id || got.Participants[0].State != "waiting" {
			t.Fatalf("session %+v", got)
		}
	})
	t.Run("through the API, and only to a specialist of the organisation", func(t *testing.T) {
		var res transferResult
		if resp := a.do(t, "POST", "/v1/sessions/"+first.ID+"/transfer", a.APIKey, transferRequest{SpecialistID: ann.id}, &res); resp.StatusCode != 200 || res.AssignedTo != ann.id {
			t.Fatalf("transfer: %d %+v", resp.StatusCode, res)
		}
		annConsole.expect(wire.TypeSessionAssigned, nil, func(raw json.RawMessage) bool { return strings.Contains(string(raw), first.ID) })
		other, _ := a.rooms.CreateOrganization(context.Background(), "Other")
		eve := a.addStaff(t, other.ID, "Eve")
		if resp := a.do(t, "POST", "/v1/sessions/"+first.ID+"/transfer", a.APIKey, transferRequest{SpecialistID: eve.id}, nil); resp.StatusCode != 422 {
			t.Fatalf("transfer to another organisation's specialist: %d", resp.StatusCode)
		}
		if resp := a.do(t, "POST", "/v1/sessions/"+first.ID+"/transfer", eve.token, transferRequest{SpecialistID: eve.id}, nil); resp.StatusCode != 404 {
			t.Fatalf("another organisation transferring the session: %d", resp.StatusCode)
		}
	})
}

func TestAdHocCustomersAreOfferedToAvailableSpecialistsFirst(t *testing.T) {
	a, b := twoNodes(t, func(c *config.Config) { c.QueueOfferDelay = 1500 * time.Millisecond })
	ann := a.addStaff(t, "", "Ann")
	bob := a.addStaff(t, "", "Bob")
	annConsole := a.openConsole(t, ann)
	bobConsole := b.openConsole(t, bob)
	bobConsole.send(wire.TypePresenceSet, wire.PresenceSet{Status: wire.PresenceAway})
	annConsole.presenceOf(bob, wire.PresenceAway)

	sess := a.createSession(t)
	carl := b.dial(t)
	carl.send(wire.TypeJoin, wire.Join{Token: linkToken(sess.CustomerURL), Name: "Carl"})
	carl.expect(wire.TypeWaiting, nil)
	joined := time.Now()

	t.Run("the available specialist is offered the customer at once", func(t *testing.T) {
		var o wire.QueueOffer
		annConsole.expect(wire.TypeQueueOffer, &o, nil)
		if o.Stage != "available" || o.SessionID != sess.ID || o.Name != "Carl" {
			t.Fatalf("offer %+v", o)
		}
	})
	t.Run("everyone is told after the delay while the customer still waits", func(t *testing.T) {
		var o wire.QueueOffer
		bobConsole.expect(wire.TypeQueueOffer, &o, nil)
		if o.Stage != "everyone" || time.Since(joined) < time.Second {
			t.Fatalf("bob's offer %+v after %s", o, time.Since(joined))
		}
	})
	t.Run("with nobody available everyone is told at once", func(t *testing.T) {
		annConsole.send(wire.TypePresenceSet, wire.PresenceSet{Status: wire.PresenceAway})
		bobConsole.presenceOf(ann, wire.PresenceAway)
		other := a.createSession(t)
		dora := a.dial(t)
		dora.send(wire.TypeJoin, wire.Join{Token: linkToken(other.CustomerURL), Name: "Dora"})
		dora.expect(wire.TypeWaiting, nil)
		start := time.Now()
		var o wire.QueueOffer
		bobConsole.expect(wire.TypeQueueOffer, &o, func(raw json.RawMessage) bool { return strings.Contains(string(raw), "Dora") })
		if o.Stage != "everyone" || time.Since(start) > time.Second {
			t.Fatalf("offer %+v after %s", o, time.Since(start))
		}
	})
}
