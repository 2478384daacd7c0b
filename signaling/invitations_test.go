package signaling

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/media/mediatest"
	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/wire"
)

// colleagueOf creates another specialist of the test organisation and returns their id and a
// console token.
func (ts *testServer) colleagueOf(t *testing.T, name string) (id, token string) {
	t.Helper()
	ctx := context.Background()
	hash, _ := auth.HashPassword("a long password for " + name)
	sp, err := ts.rooms.CreateSpecialist(ctx, ts.Bootstrap().OrganizationID, strings.ToLower(name)+"@example.com", name, hash, rooms.StaffSpecialist)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err = ts.issuer.IssueConsole(sp.OrgID, sp.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return sp.ID, token
}

// joinConsole joins a session as a signed-in specialist (console token + session id), with media.
func (ts *testServer) joinConsole(t *testing.T, consoleToken, sessionID, name string) *callPeer {
	t.Helper()
	return ts.joinCallAs(t, wire.Join{Token: consoleToken, SessionID: sessionID, Name: name})
}

// joinCallAs is joinCall with a whole join payload (a console token and a session id).
func (ts *testServer) joinCallAs(t *testing.T, join wire.Join) *callPeer {
	t.Helper()
	return ts.joinCallAsWith(t, join, mediatest.Config{})
}

type invitationReply struct {
	ID            string `json:"id"`
	Kind          string `json:"kind"`
	State         string `json:"state"`
	URL           string `json:"url"`
	SpecialistID  string `json:"specialist_id"`
	ParticipantID string `json:"participant_id"`
}

func (ts *testServer) invite(t *testing.T, bearer, sessionID string, body map[string]any) invitationReply {
	t.Helper()
	var out invitationReply
	resp := ts.do(t, "POST", "/v1/sessions/"+sessionID+"/invitations", bearer, body, &out)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("invite %v: %d %+v", body, resp.StatusCode, out)
	}
	return out
}

// startMedia starts a peer's media and waits until it is connected.
func startMedia(t *testing.T, cp *callPeer) {
	t.Helper()
	if err := cp.peer.Start(); err != nil {
		t.Fatal(err)
	}
}

func TestEightParticipantsEachReceiveEveryoneElse(t *testing.T) {
	ts := newTestServer(t)
	s := ts.createSession(t)

	specialist := ts.joinCall(t, linkToken(s.SpecialistURL), "Sam")
	startMedia(t, specialist)
	peers := []*callPeer{specialist}
	// A colleague from the console.
	_, colleagueToken := ts.colleagueOf(t, "Cleo")
	colleague := ts.joinConsole(t, colleagueToken, s.ID, "")
	startMedia(t, colleague)
	peers = append(peers, colleague)
	// Three customers, each with a link of their own, admitted one by one.
	for i := range 3 {
		link := linkToken(s.CustomerURL)
		if i > 0 {
			var err error
			if link, _, err = ts.issuer.IssueLink(ts.Bootstrap().OrganizationID, s.ID, auth.RoleCustomer, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		c := ts.joinCall(t, link, fmt.Sprintf("Customer %d", i+1))
		c.expect(wire.TypeWaiting, nil)
		specialist.write(wire.TypeAdmit, wire.Admit{ParticipantID: c.id})
		c.expect(wire.TypeAdmitted, nil)
		startMedia(t, c)
		peers = append(peers, c)
	}
	// Three outside experts, straight into the call.
	for i := range 3 {
		inv := ts.invite(t, ts.APIKey, s.ID, map[string]any{"kind": "expert", "name": fmt.Sprintf("Expert %d", i+1)})
		e := ts.joinCall(t, linkToken(inv.URL), "")
		e.expect(wire.TypeAdmitted, nil)
		startMedia(t, e)
		peers = append(peers, e)
	}
	if len(peers) != 8 {
		t.Fatalf("%d participants", len(peers))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8*7*2)
	for _, who := range peers {
		for _, from := range peers {
			if who == from {
				continue
			}
			for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
				wg.Go(func() {
					if err := who.peer.WaitReceivedFrom(ctx, from.id, kind, 20); err != nil {
						errs <- fmt.Errorf("%s did not receive %s from %s: %w", who.id, kind, from.id, err)
					}
				})
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	got := ts.getSession(t, s.ID)
	inCall := 0
	for _, p := range got.Participants {
		if p.State == "in_call" {
			inCall++
		}
	}
	if inCall != 8 {
		t.Fatalf("%d participants in the call, want 8: %+v", inCall, got.Participants)
	}
}

func TestInviteAColleagueWhoJoinsFromTheConsole(t *testing.T) {
	ts := newTestServer(t)
	s := ts.createSession(t)
	_, firstToken := ts.colleagueOf(t, "Fiona")
	colleagueID, colleagueToken := ts.colleagueOf(t, "Colin")

	first := ts.joinConsole(t, firstToken, s.ID, "")
	startMedia(t, first)

	t.Run("the colleague must be named and be another specialist of the organisation", func(t *testing.T) {
		for _, body := range []map[string]any{
			{"kind": "colleague"},
			{"kind": "colleague", "specialist_id": "spe_nobody"},
			{"kind": "colleague", "specialist_id": colleagueID, "email": "x@example.com"},
			{"kind": "visitor"},
		} {
			if resp := ts.do(t, "POST", "/v1/sessions/"+s.ID+"/invitations", firstToken, body, nil); resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("%v: %d, want 422", body, resp.StatusCode)
			}
		}
	})

	inv := ts.invite(t, firstToken, s.ID, map[string]any{"kind": "colleague", "specialist_id": colleagueID})
	if inv.Kind != "colleague" || inv.State != "pending" || inv.URL != "" {
		t.Fatalf("invitation = %+v", inv)
	}

	t.Run("the colleague's console finds the invitation", func(t *testing.T) {
		var mine invitationList
		ts.do(t, "GET", "/v1/invitations", colleagueToken, nil, &mine)
		if len(mine.Data) != 1 || mine.Data[0].ID != inv.ID || mine.Data[0].SessionID != s.ID || mine.Data[0].InvitedByName != "Fiona" {
			t.Fatalf("the colleague's invitations = %+v", mine)
		}
		var theirs invitationList
		ts.do(t, "GET", "/v1/invitations", firstToken, nil, &theirs)
		if len(theirs.Data) != 0 {
			t.Fatalf("the inviting specialist is invited too: %+v", theirs)
		}
	})

	colleague := ts.joinConsole(t, colleagueToken, s.ID, "")
	startMedia(t, colleague)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := colleague.peer.WaitReceivedFrom(ctx, first.id, webrtc.RTPCodecTypeVideo, 20); err != nil {
		t.Fatalf("the colleague does not see the first specialist: %v", err)
	}
	if err := first.peer.WaitReceivedFrom(ctx, colleague.id, webrtc.RTPCodecTypeVideo, 20); err != nil {
		t.Fatalf("the first specialist does not see the colleague: %v", err)
	}

	t.Run("joining accepts the invitation", func(t *testing.T) {
		var list invitationList
		ts.do(t, "GET", "/v1/sessions/"+s.ID+"/invitations", firstToken, nil, &list)
		if len(list.Data) != 1 || list.Data[0].State != "accepted" || list.Data[0].ParticipantID != colleague.id {
			t.Fatalf("invitations = %+v", list)
		}
		var mine invitationList
		ts.do(t, "GET", "/v1/invitations", colleagueToken, nil, &mine)
		if len(mine.Data) != 0 {
			t.Fatalf("still invited after joining: %+v", mine)
		}
	})
}

// tryJoin joins with a link token and returns the first reply's type and error code.
func (ts *testServer) tryJoin(t *testing.T, token string) (wire.Type, wire.ErrorCode) {
	t.Helper()
	sock := ts.dial(t)
	sock.send(wire.TypeJoin, wire.Join{Token: token})
	env, err := sock.next()
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	if env.Type == wire.TypeError {
		var e wire.Error
		_ = json.Unmarshal(env.Payload, &e)
		return env.Type, e.Code
	}
	return env.Type, ""
}

// status is a page's HTTP status.
func status(t *testing.T, url string) int {
	t.Helper()
	code, _ := pageStatus(t, url)
	return code
}

func TestExpertLink(t *testing.T) {
	ts := newTestServer(t)
	s := ts.createSession(t)
	other := ts.createSession(t)

	specialist := ts.joinCall(t, linkToken(s.SpecialistURL), "Sam")
	startMedia(t, specialist)
	customer := ts.joinCall(t, linkToken(s.CustomerURL), "Ann")
	customer.expect(wire.TypeWaiting, nil)
	specialist.write(wire.TypeAdmit, wire.Admit{ParticipantID: customer.id})
	customer.expect(wire.TypeAdmitted, nil)
	startMedia(t, customer)

	t.Run("bad expert invitations are refused", func(t *testing.T) {
		for _, body := range []map[string]any{
			{"kind": "expert", "email": "not an address"},
			{"kind": "expert", "phone": "0612"},
			{"kind": "expert", "expires_in_seconds": 5},
			{"kind": "expert", "expires_in_seconds": 7 * 86400},
			{"kind": "expert", "specialist_id": "spe_x"},
		} {
			if resp := ts.do(t, "POST", "/v1/sessions/"+s.ID+"/invitations", ts.APIKey, body, nil); resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("%v: %d, want 422", body, resp.StatusCode)
			}
		}
	})

	inv := ts.invite(t, ts.APIKey, s.ID, map[string]any{"kind": "expert", "name": "Dr Ext", "email": "ext@example.com"})
	if !strings.Contains(inv.URL, "/e/") || inv.State != "pending" {
		t.Fatalf("invitation = %+v", inv)
	}
	token := linkToken(inv.URL)

	t.Run("the link opens the call page, and no other page", func(t *testing.T) {
		if got := status(t, inv.URL); got != http.StatusOK {
			t.Fatalf("expert page: %d", got)
		}
		if got := status(t, ts.URL+"/c/"+token); got != http.StatusForbidden {
			t.Fatalf("customer page with the expert link: %d, want 403", got)
		}
		if got := status(t, ts.URL+"/s/"+token); got != http.StatusForbidden {
			t.Fatalf("specialist page with the expert link: %d, want 403", got)
		}
	})

	expert := ts.joinCall(t, token, "")
	expert.expect(wire.TypeAdmitted, nil) // no waiting room
	startMedia(t, expert)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, c := range []struct{ who, from *callPeer }{{expert, customer}, {expert, specialist}, {customer, expert}, {specialist, expert}} {
		if err := c.who.peer.WaitReceivedFrom(ctx, c.from.id, webrtc.RTPCodecTypeVideo, 20); err != nil {
			t.Fatalf("%s does not see %s: %v", c.who.id, c.from.id, err)
		}
	}
	expert.expectRoster("the expert is listed by the invited name", func(r map[string]wire.RosterEntry) bool {
		return r[expert.id].Role == "expert" && r[expert.id].Name == "Dr Ext"
	})

	t.Run("the expert chats and points", func(t *testing.T) {
		expert.write(wire.TypeChat, wire.ChatSend{Text: "hello from the expert"})
		customer.expect(wire.TypeChat, nil)
		expert.write(wire.TypePointer, wire.PointerSend{Target: "video:" + customer.id, X: 0.5, Y: 0.5, Visible: true})
		customer.expect(wire.TypePointer, nil)
	})

	t.Run("the expert is refused what only a specialist may do", func(t *testing.T) {
		for _, m := range []struct {
			typ     wire.Type
			payload any
		}{
			{wire.TypeAdmit, wire.Admit{ParticipantID: customer.id}},
			{wire.TypeDeny, wire.Deny{ParticipantID: customer.id}},
			{wire.TypeEnd, wire.Empty{}},
			{wire.TypeRecord, wire.RecordSend{Active: true}},
			{wire.TypeAnnotation, wire.AnnotationSend{Target: "video:" + customer.id, Action: "clear"}},
			{wire.TypeCameraControl, wire.CameraControlSend{Command: "flip"}},
			{wire.TypeSnapshotRequest, wire.Empty{}},
			{wire.TypeGeolocationRequest, wire.Empty{}},
		} {
			expert.write(m.typ, m.payload)
			var e wire.Error
			expert.expect(wire.TypeError, &e)
			if e.Code != wire.CodeForbidden {
				t.Errorf("%s: %s %q, want forbidden", m.typ, e.Code, e.Message)
			}
		}
		if got := ts.getSession(t, s.ID); got.State == api.SessionEnded {
			t.Fatal("the expert ended the session")
		}
	})

	t.Run("the link works for its session only", func(t *testing.T) {
		req, _ := http.NewRequest("POST", ts.URL+"/v1/sessions/"+other.ID+"/files?name=a.txt", strings.NewReader("hello"))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("upload to another session with the expert link: %d, want 403", resp.StatusCode)
		}
	})

	t.Run("an expired link or invitation is refused", func(t *testing.T) {
		expired, _, err := ts.issuer.IssueLink(ts.Bootstrap().OrganizationID, s.ID, auth.RoleExpert, -time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if got := status(t, ts.URL+"/e/"+expired); got != http.StatusGone {
			t.Fatalf("page of an expired link: %d, want 410", got)
		}
		if typ, code := ts.tryJoin(t, expired); typ != wire.TypeError || code != wire.CodeUnauthorized {
			t.Fatalf("join with an expired link: %s %s", typ, code)
		}
		// A link still valid as a token whose invitation has run out.
		tok, _, err := ts.issuer.IssueLink(ts.Bootstrap().OrganizationID, s.ID, auth.RoleExpert, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		claims, _ := ts.issuer.VerifyLink(tok)
		if _, err := ts.rooms.CreateInvitation(context.Background(), rooms.Invitation{OrgID: claims.Org, SessionID: s.ID,
			Kind: rooms.InviteExpert, TokenID: claims.ID, InvitedBy: "api", ExpiresAt: time.Now().Add(-time.Second)}); err != nil {
			t.Fatal(err)
		}
		if got := status(t, ts.URL+"/e/"+tok); got != http.StatusGone {
			t.Fatalf("page of an expired invitation: %d, want 410", got)
		}
		if typ, code := ts.tryJoin(t, tok); typ != wire.TypeError || code != wire.CodeForbidden {
			t.Fatalf("join with an expired invitation: %s %s", typ, code)
		}
		// An expert link the server never issued an invitation for.
		if got := status(t, ts.URL+"/e/"+linkToken(s.CustomerURL)); got != http.StatusForbidden {
			t.Fatalf("expert page with a customer link: %d, want 403", got)
		}
	})

	t.Run("revoking takes the expert out and the link stops working", func(t *testing.T) {
		if resp := ts.do(t, "DELETE", "/v1/sessions/"+s.ID+"/invitations/"+inv.ID, ts.APIKey, nil, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("revoke: %d", resp.StatusCode)
		}
		var denied wire.Denied
		expert.expect(wire.TypeDenied, &denied)
		if got := status(t, inv.URL); got != http.StatusGone {
			t.Fatalf("page after revoking: %d, want 410", got)
		}
		if typ, code := ts.tryJoin(t, token); typ != wire.TypeError || code != wire.CodeForbidden {
			t.Fatalf("join after revoking: %s %s", typ, code)
		}
		customer.expectRoster("the expert is gone", rosterState(expert.id, ""))
		var list invitationList
		ts.do(t, "GET", "/v1/sessions/"+s.ID+"/invitations", ts.APIKey, nil, &list)
		if len(list.Data) == 0 || list.Data[0].ID != inv.ID || list.Data[0].State != "revoked" {
			t.Fatalf("invitations = %+v", list)
		}
		if resp := ts.do(t, "DELETE", "/v1/sessions/"+s.ID+"/invitations/inv_none", ts.APIKey, nil, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("revoke an unknown invitation: %d", resp.StatusCode)
		}
	})
}

func TestHandoverKeepsTheCustomerConnected(t *testing.T) {
	ts := newTestServer(t)
	s := ts.createSession(t)
	firstID, firstToken := ts.colleagueOf(t, "Hana")
	secondID, secondToken := ts.colleagueOf(t, "Ivan")

	first := ts.joinConsole(t, firstToken, s.ID, "")
	startMedia(t, first)
	customer := ts.joinCall(t, linkToken(s.CustomerURL), "Ann")
	customer.expect(wire.TypeWaiting, nil)
	first.write(wire.TypeAdmit, wire.Admit{ParticipantID: customer.id})
	customer.expect(wire.TypeAdmitted, nil)
	startMedia(t, customer)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := customer.peer.WaitReceivedFrom(ctx, first.id, webrtc.RTPCodecTypeVideo, 20); err != nil {
		t.Fatal(err)
	}
	if err := customer.peer.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	// Watch the customer's peer connection through the whole handover.
	var statesMu sync.Mutex
	var states []webrtc.PeerConnectionState
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopWatch:
				return
			case <-tick.C:
				st := customer.peer.ConnectionState()
				statesMu.Lock()
				if len(states) == 0 || states[len(states)-1] != st {
					states = append(states, st)
				}
				statesMu.Unlock()
			}
		}
	}()
	receivedBefore := ts.customerPacketsReceived(t, s.ID, customer.id)

	t.Run("only to a colleague of the organisation", func(t *testing.T) {
		for _, id := range []string{"", firstID, "spe_nobody"} {
			if resp := ts.do(t, "POST", "/v1/sessions/"+s.ID+"/handover", firstToken, map[string]any{"specialist_id": id}, nil); resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("hand over to %q: %d, want 422", id, resp.StatusCode)
			}
		}
	})

	var reply handoverReply
	if resp := ts.do(t, "POST", "/v1/sessions/"+s.ID+"/handover", firstToken, map[string]any{"specialist_id": secondID}, &reply); resp.StatusCode != http.StatusOK {
		t.Fatalf("hand over: %d", resp.StatusCode)
	}
	if reply.HandedOverTo != secondID || reply.Invitation.Kind != "handover" {
		t.Fatalf("reply = %+v", reply)
	}
	var entry wire.Handover
	customer.expect(wire.TypeHandover, &entry)
	if entry.FromSpecialist.SpecialistID != firstID || entry.ToSpecialist.Name != "Ivan" || entry.From.ParticipantID != first.id {
		t.Fatalf("timeline entry = %+v", entry)
	}
	// The first specialist leaves, as the console does after handing over.
	first.write(wire.TypeLeave, wire.Empty{})
	customer.expectRoster("the first specialist has left", rosterState(first.id, ""))

	var mine invitationList
	ts.do(t, "GET", "/v1/invitations", secondToken, nil, &mine)
	if len(mine.Data) != 1 || mine.Data[0].Kind != "handover" || mine.Data[0].SessionID != s.ID {
		t.Fatalf("the colleague's invitations = %+v", mine)
	}
	second := ts.joinConsole(t, secondToken, s.ID, "")
	startMedia(t, second)
	for _, c := range []struct{ who, from *callPeer }{{customer, second}, {second, customer}} {
		for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
			if err := c.who.peer.WaitReceivedFrom(ctx, c.from.id, kind, 20); err != nil {
				t.Fatalf("%s does not receive %s from %s: %v", c.who.id, kind, c.from.id, err)
			}
		}
	}
	close(stopWatch)
	<-watchDone

	t.Run("the customer stayed connected on the same peer connection", func(t *testing.T) {
		statesMu.Lock()
		defer statesMu.Unlock()
		if len(states) != 1 || states[0] != webrtc.PeerConnectionStateConnected {
			t.Fatalf("the customer's connection went through %v", states)
		}
		if after := ts.customerPacketsReceived(t, s.ID, customer.id); after <= receivedBefore {
			t.Fatalf("the SFU received %d packets from the customer after the handover, %d before", after, receivedBefore)
		}
		got := ts.getSession(t, s.ID)
		for _, p := range got.Participants {
			if p.Role == "customer" && (p.ID != customer.id || p.State != "in_call") {
				t.Fatalf("customer = %+v", p)
			}
		}
	})

	t.Run("the session's specialist changed, with an audit event and the invitation accepted", func(t *testing.T) {
		sess, err := ts.rooms.Session(context.Background(), ts.Bootstrap().OrganizationID, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if sess.HandedOverTo != secondID {
			t.Fatalf("handed over to %q", sess.HandedOverTo)
		}
		var events struct {
			Data []struct {
				Action string `json:"action"`
				Target string `json:"target"`
			} `json:"data"`
		}
		ts.do(t, "GET", "/v1/audit-events?action=session.handover", ts.APIKey, nil, &events)
		if len(events.Data) != 1 || events.Data[0].Target != "specialist:"+secondID {
			t.Fatalf("audit events = %+v", events)
		}
		var list invitationList
		ts.do(t, "GET", "/v1/sessions/"+s.ID+"/invitations", ts.APIKey, nil, &list)
		if len(list.Data) != 1 || list.Data[0].State != "accepted" || list.Data[0].ParticipantID != second.id {
			t.Fatalf("invitations = %+v", list)
		}
		// A late joiner finds the handover in the history.
		var full api.Session
		ts.do(t, "GET", "/v1/sessions/"+s.ID, ts.APIKey, nil, &full)
		found := false
		for _, e := range full.Timeline {
			found = found || e.Type == wire.TypeHandover
		}
		if !found {
			t.Fatal("no handover entry in the session's timeline")
		}
	})
}

// customerPacketsReceived is how many packets the SFU has received from a participant.
func (ts *testServer) customerPacketsReceived(t *testing.T, sessionID, participantID string) uint64 {
	t.Helper()
	var n uint64
	for _, p := range ts.getSession(t, sessionID).Participants {
		if p.ID == participantID {
			for _, tr := range p.Tracks {
				n += tr.PacketsReceived
			}
		}
	}
	return n
}
