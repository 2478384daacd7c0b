package signaling

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/assist-video/assist/rooms/notify"
	"github.com/assist-video/assist/signaling/wire"
)

// notifyingServer is a node that sends email to an in-process SMTP server and texts to an SMS
// webhook provider on loopback, and lets a waiting customer leave a message after 1.5 s.
func notifyingServer(t *testing.T) (*testServer, *mailbox, *smsProvider) {
	t.Helper()
	const smsSecret = "a shared secret for the sms webhook"
	sms := startSMSProvider(t, smsSecret)
	mb := startMailbox(t)
	cfg := testConfig(t)
	cfg.QueueTimeout = 1500 * time.Millisecond
	cfg.SMSProvider, cfg.SMSURL, cfg.SMSSecret = "webhook", sms.URL, smsSecret
	mb.configure(&cfg)
	return startTestServer(t, cfg), mb, sms
}

// leaveVideoMessage has a customer of a new session wait until nobody could take them and leave
// a message with details (Ana Ruiz, Spanish, an email address and a phone number).
func (ts *testServer) leaveVideoMessage(t *testing.T) videoMessageView {
	t.Helper()
	sess := ts.createSession(t)
	token := linkToken(sess.CustomerURL)
	customer, _ := ts.joinWaiting(t, token, "Ana")
	customer.waitingWhere("nobody could take the call yet", func(w wire.Waiting) bool { return w.TimedOut })
	var msg videoMessageView
	resp, body := upload(t, ts.messageURL(sess.ID, details()), token, webmBytes(20_000))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("leave a message: %d %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatal(err)
	}
	return msg
}

// waitText waits until the SMS provider was asked to send a text to a number.
func (p *smsProvider) waitText(t *testing.T, to string, timeout time.Duration) notify.WebhookMessage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if texts := p.sentTo(to); len(texts) > 0 {
			return texts[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no text to %s within %v", to, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDeliveries polls until every delivery in what get returns is in a final state wanted.
func waitDeliveries(t *testing.T, what string, want string, count int, get func() []notificationView) []notificationView {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := get()
		n := 0
		for _, d := range got {
			if d.State == want {
				n++
			}
		}
		if n == count && len(got) == count {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: deliveries %+v, want %d %s", what, got, count, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestCallBackLinkIsSentWithCallBackWording(t *testing.T) {
	ts, mb, sms := notifyingServer(t)
	org, err := ts.rooms.Organization(context.Background(), ts.Bootstrap().OrganizationID)
	if err != nil {
		t.Fatal(err)
	}
	msg := ts.leaveVideoMessage(t)

	var got videoMessageView
	if resp := ts.do(t, "POST", "/v1/video-messages/"+msg.ID+"/call-back", ts.APIKey, map[string]any{}, &got); resp.StatusCode != http.StatusCreated {
		t.Fatalf("call back: %d", resp.StatusCode)
	}
	link := got.CallBack.CustomerURL

	t.Run("the email says they are called back, in their language, with the new link", func(t *testing.T) {
		mail := mb.waitFor(t, "with the call-back link", 20*time.Second, kindTo("callback", "ana@example.com"))
		if mail.Subject != org.Name+" le devuelve la llamada" || mail.Language != "es" {
			t.Errorf("subject %q in %q", mail.Subject, mail.Language)
		}
		for _, want := range []string{"Hola, Ana Ruiz:", "Gracias por su mensaje de vídeo", "puede atenderle ahora", "válido hasta el", link} {
			if !strings.Contains(mail.Text, want) {
				t.Errorf("the email lacks %q:\n%s", want, mail.Text)
			}
		}
		if strings.Contains(mail.Text, "cita") || strings.Contains(mail.Subject, "confirmada") {
			t.Errorf("the email speaks of a booked appointment:\n%s", mail.Text)
		}
	})
	t.Run("the text says the same, with the same link", func(t *testing.T) {
		text := sms.waitText(t, "+34600111222", 20*time.Second)
		if !strings.Contains(text.Body, "gracias por su mensaje") || !strings.Contains(text.Body, link) || strings.Contains(text.Body, "cita") {
			t.Errorf("text %q", text.Body)
		}
	})
	t.Run("the message shows both sent", func(t *testing.T) {
		waitDeliveries(t, "call-back", "sent", 2, func() []notificationView {
			var now videoMessageView
			ts.do(t, "GET", "/v1/video-messages/"+msg.ID, ts.APIKey, nil, &now)
			return now.CallBack.Notifications
		})
		statuses, err := ts.notifier.Statuses(context.Background(), msg.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range statuses {
			if st.Kind != notify.KindCallBack || st.ID != msg.ID+".callback."+string(st.Channel) {
				t.Errorf("status %+v", st)
			}
		}
	})
	t.Run("the link in the email opens the new session's waiting room", func(t *testing.T) {
		_, pid := ts.joinWaiting(t, linkToken(link), "Ana")
		sess := ts.getSession(t, got.CallBack.SessionID)
		found := false
		for _, p := range sess.Participants {
			found = found || p.ID == pid
		}
		if !found {
			t.Fatalf("the customer %s is not in the call-back session %+v", pid, sess.Participants)
		}
	})
}

// expertLinkPattern finds an expert's link in an email or a text.
var expertLinkPattern = regexp.MustCompile(`https?://[^\s"<>]+/e/[A-Za-z0-9._-]+`)

func TestExpertInvitationIsSentByEmailAndSMS(t *testing.T) {
	ts, mb, sms := notifyingServer(t)
	org, err := ts.rooms.Organization(context.Background(), ts.Bootstrap().OrganizationID)
	if err != nil {
		t.Fatal(err)
	}
	s := ts.createSession(t)
	_, samToken := ts.colleagueOf(t, "Sam")

	t.Run("a language that is not a tag is refused", func(t *testing.T) {
		body := map[string]any{"kind": "expert", "email": "bea@example.com", "language": "French!"}
		if resp := ts.do(t, "POST", "/v1/sessions/"+s.ID+"/invitations", samToken, body, nil); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("%d, want 422", resp.StatusCode)
		}
	})

	var inv invitationView
	body := map[string]any{"kind": "expert", "name": "Dr Béa Ext", "email": "bea@example.com", "phone": "+33612345678", "language": "fr"}
	if resp := ts.do(t, "POST", "/v1/sessions/"+s.ID+"/invitations", samToken, body, &inv); resp.StatusCode != http.StatusCreated {
		t.Fatalf("invite: %d %+v", resp.StatusCode, inv)
	}
	if len(inv.Notifications) != 2 {
		t.Fatalf("the reply does not show the two deliveries: %+v", inv.Notifications)
	}

	var emailed, texted string
	t.Run("the expert gets an email from the inviting specialist, with their link", func(t *testing.T) {
		mail := mb.waitFor(t, "with the expert link", 20*time.Second, kindTo("invitation", "bea@example.com"))
		if mail.Subject != "Sam ("+org.Name+") vous invite à un appel vidéo" || mail.Language != "fr" {
			t.Errorf("subject %q in %q", mail.Subject, mail.Language)
		}
		for _, want := range []string{"Bonjour Dr Béa Ext,", "Sam, de " + org.Name + ",", "apporter votre expertise", "Votre lien personnel, valable jusqu'au"} {
			if !strings.Contains(mail.Text, want) {
				t.Errorf("the email lacks %q:\n%s", want, mail.Text)
			}
		}
		emailed = expertLinkPattern.FindString(mail.Text)
		if emailed != inv.URL {
			t.Errorf("the email's link %q, want %q", emailed, inv.URL)
		}
	})
	t.Run("and a text with the same link", func(t *testing.T) {
		text := sms.waitText(t, "+33612345678", 20*time.Second)
		texted = expertLinkPattern.FindString(text.Body)
		if texted != inv.URL || !strings.Contains(text.Body, "Sam vous invite") {
			t.Errorf("text %q", text.Body)
		}
	})
	t.Run("the invitation shows both sent", func(t *testing.T) {
		waitDeliveries(t, "invitation", "sent", 2, func() []notificationView {
			var list invitationList
			ts.do(t, "GET", "/v1/sessions/"+s.ID+"/invitations", ts.APIKey, nil, &list)
			for _, v := range list.Data {
				if v.ID == inv.ID {
					return v.Notifications
				}
			}
			return nil
		})
	})
	t.Run("the link from the text joins the call as the expert", func(t *testing.T) {
		if texted == "" {
			t.Fatal("no link arrived by SMS")
		}
		expert := ts.joinCall(t, linkToken(texted), "")
		expert.expect(wire.TypeAdmitted, nil) // experts skip the waiting room
		expert.expectRoster("the expert is listed as the invited expert", func(r map[string]wire.RosterEntry) bool {
			return r[expert.id].Role == "expert" && r[expert.id].Name == "Dr Béa Ext"
		})
	})
	t.Run("an expert invited with no address is sent nothing", func(t *testing.T) {
		var quiet invitationView
		ts.do(t, "POST", "/v1/sessions/"+s.ID+"/invitations", ts.APIKey, map[string]any{"kind": "expert", "name": "Quiet"}, &quiet)
		if quiet.URL == "" || len(quiet.Notifications) != 0 {
			t.Fatalf("%+v", quiet)
		}
		statuses, err := ts.notifier.Statuses(context.Background(), quiet.ID)
		if err != nil || len(statuses) != 0 {
			t.Fatalf("statuses %+v %v", statuses, err)
		}
	})
	t.Run("a link still waiting to be sent when the invitation is withdrawn is never sent", func(t *testing.T) {
		mb.setRefuse(func(to string) bool { return to == "late@example.com" })
		var late invitationView
		ts.do(t, "POST", "/v1/sessions/"+s.ID+"/invitations", ts.APIKey, map[string]any{"kind": "expert", "email": "late@example.com"}, &late)
		deadline := time.Now().Add(20 * time.Second)
		for { // the first attempt is refused for now: it waits for a retry
			statuses, _ := ts.notifier.Statuses(context.Background(), late.ID)
			if len(statuses) == 1 && statuses[0].Attempts >= 1 && statuses[0].State == notify.StateQueued {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the first attempt did not fail: %+v", statuses)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if resp := ts.do(t, "DELETE", "/v1/sessions/"+s.ID+"/invitations/"+late.ID, ts.APIKey, nil, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("revoke: %d", resp.StatusCode)
		}
		mb.setRefuse(nil)
		got := waitDeliveries(t, "withdrawn invitation", "skipped", 1, func() []notificationView {
			var list invitationList
			ts.do(t, "GET", "/v1/sessions/"+s.ID+"/invitations", ts.APIKey, nil, &list)
			for _, v := range list.Data {
				if v.ID == late.ID {
					return v.Notifications
				}
			}
			return nil
		})
		if !strings.Contains(got[0].LastError, "withdrawn") {
			t.Errorf("skipped because %q", got[0].LastError)
		}
		if n := len(mb.all(to("late@example.com"))); n != 0 {
			t.Fatalf("%d emails went to the withdrawn expert", n)
		}
	})
}

func TestDeletingASessionDeletesItsVideoMessages(t *testing.T) {
	ts, _, _ := notifyingServer(t)
	ctx := context.Background()
	orgID := ts.Bootstrap().OrganizationID

	t.Run("DELETE /v1/sessions/{id} takes the session's messages with it", func(t *testing.T) {
		msg := ts.leaveVideoMessage(t)
		kept := ts.leaveVideoMessage(t) // another session's
		if resp := ts.do(t, "GET", "/v1/video-messages/"+msg.ID, ts.APIKey, nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("before: %d", resp.StatusCode)
		}
		if resp := ts.do(t, "DELETE", "/v1/sessions/"+msg.SessionID, ts.APIKey, nil, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("delete session: %d", resp.StatusCode)
		}
		if resp := ts.do(t, "GET", "/v1/video-messages/"+msg.ID, ts.APIKey, nil, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("the message after its session was deleted: %d, want 404", resp.StatusCode)
		}
		var list videoMessageList
		ts.do(t, "GET", "/v1/video-messages", ts.APIKey, nil, &list)
		if len(list.Data) != 1 || list.Data[0].ID != kept.ID {
			t.Fatalf("listed %+v, want only the other session's message", list.Data)
		}
		if objects := ts.sessionObjects(t, orgID, msg.SessionID); len(objects) != 0 {
			t.Fatalf("the recording is still stored: %v", objects)
		}
		if resp := ts.do(t, "GET", "/v1/video-messages/"+kept.ID, ts.APIKey, nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("the other session's message: %d", resp.StatusCode)
		}
	})

	t.Run("the retention job takes a message with its recording", func(t *testing.T) {
		var list videoMessageList
		ts.do(t, "GET", "/v1/video-messages", ts.APIKey, nil, &list)
		if len(list.Data) != 1 {
			t.Fatalf("listed %+v", list.Data)
		}
		old := list.Data[0]
		ts.setPolicy(t, map[string]any{"retention_days": 2})
		if err := ts.applyRetention(ctx, time.Now().Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if resp := ts.do(t, "GET", "/v1/video-messages/"+old.ID, ts.APIKey, nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("within the period: %d, want 200", resp.StatusCode)
		}
		if err := ts.applyRetention(ctx, time.Now().Add(49*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if resp := ts.do(t, "GET", "/v1/video-messages/"+old.ID, ts.APIKey, nil, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("after the period: %d, want 404", resp.StatusCode)
		}
		if objects := ts.sessionObjects(t, orgID, old.SessionID); len(objects) != 0 {
			t.Fatalf("the recording is still stored: %v", objects)
		}
	})
}
