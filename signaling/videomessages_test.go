package signaling

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-video/assist/recording/store"
	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/notify"
	"github.com/assist-video/assist/rooms/webhooks"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/wire"
)

// webmBytes starts like every WebM file (an EBML header with doc type "webm"); the browser
// test sends a real MediaRecorder recording.
func webmBytes(n int) []byte {
	head := []byte("\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02")
	out := make([]byte, max(n, len(head)))
	copy(out, head)
	return out
}

// hookReceiver is an integrator's webhook endpoint on loopback: it checks every signature
// with the endpoint's secret and keeps the events.
type hookReceiver struct {
	*httptest.Server
	t      *testing.T
	mu     sync.Mutex
	secret string
	events []hookEvent
	arrive chan struct{}
}

type hookEvent struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

func startHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{t: t, arrive: make(chan struct{}, 100)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		secret := h.secret
		h.mu.Unlock()
		if err := webhooks.VerifySignature(secret, r.Header, body, time.Minute); err != nil {
			t.Errorf("webhook signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev hookEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
		h.arrive <- struct{}{}
	}))
	t.Cleanup(h.Close)
	return h
}

// register makes the receiver an endpoint of the suite's organisation.
func (h *hookReceiver) register(t *testing.T, ts *testServer, events ...string) string {
	t.Helper()
	var ep struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if resp := ts.do(t, "POST", "/v1/webhooks", ts.APIKey, map[string]any{"url": h.URL + "/hook", "events": events}, &ep); resp.StatusCode != 201 {
		t.Fatalf("create webhook: %d", resp.StatusCode)
	}
	h.mu.Lock()
	h.secret = ep.Secret
	h.mu.Unlock()
	return ep.ID
}

// waitFor waits for an event that matches and returns it.
func (h *hookReceiver) waitFor(what string, match func(hookEvent) bool) hookEvent {
	h.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		h.mu.Lock()
		for _, ev := range h.events {
			if match(ev) {
				h.mu.Unlock()
				return ev
			}
		}
		h.mu.Unlock()
		select {
		case <-h.arrive:
		case <-deadline:
			h.t.Fatalf("no webhook %s within 20s", what)
		}
	}
}

// smsProvider is the SMS webhook provider on loopback, keeping the texts it is asked to send.
type smsProvider struct {
	*httptest.Server
	mu    sync.Mutex
	texts []notify.WebhookMessage
}

func startSMSProvider(t *testing.T, secret string) *smsProvider {
	p := &smsProvider{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.VerifyWebhook([]byte(secret), r.Header.Get(notify.SignatureHeader), body, time.Now(), time.Minute); err != nil {
			t.Errorf("sms signature: %v", err)
			w.WriteHeader(401)
			return
		}
		var m notify.WebhookMessage
		_ = json.Unmarshal(body, &m)
		p.mu.Lock()
		p.texts = append(p.texts, m)
		p.mu.Unlock()
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *smsProvider) sentTo(to string) []notify.WebhookMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []notify.WebhookMessage
	for _, m := range p.texts {
		if m.To == to {
			out = append(out, m)
		}
	}
	return out
}

// messageURL is the upload URL of a session's video messages with the customer's details.
func (ts *testServer) messageURL(sessionID string, q url.Values) string {
	return ts.URL + "/v1/sessions/" + sessionID + "/video-messages?" + q.Encode()
}

func details(extra ...string) url.Values {
	q := url.Values{"duration_ms": {"4200"}, "name": {"Ana Ruiz"}, "phone": {"+34600111222"},
		"email": {"ana@example.com"}, "language": {"es"}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return q
}

// problemType reads the type of a problem reply.
func problemType(body []byte) string {
	var p struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(body, &p)
	return p.Type[strings.LastIndex(p.Type, "/")+1:]
}

// sessionObjects lists what storage holds for a session.
func (ts *testServer) sessionObjects(t *testing.T, orgID, sessionID string) []store.ObjectInfo {
	t.Helper()
	prefix, err := store.SessionPrefix(orgID, sessionID)
	if err != nil {
		t.Fatal(err)
	}
	objects, err := ts.objects.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return objects
}

func TestVideoMessages(t *testing.T) {
	const smsSecret = "a shared secret for the sms webhook"
	sms := startSMSProvider(t, smsSecret)
	mb := startMailbox(t)
	cfg := testConfig(t)
	cfg.QueueTimeout = 1500 * time.Millisecond
	cfg.SMSProvider, cfg.SMSURL, cfg.SMSSecret = "webhook", sms.URL, smsSecret
	mb.configure(&cfg)
	ts := startTestServer(t, cfg)
	orgID := ts.Bootstrap().OrganizationID
	hooks := startHookReceiver(t)
	hooks.register(t, ts, webhooks.TypeVideoMessageReceived)

	sess := ts.createSession(t)
	token := linkToken(sess.CustomerURL)
	customer, _ := ts.joinWaiting(t, token, "Ana")

	t.Run("before the queue timeout a message is refused", func(t *testing.T) {
		resp, body := upload(t, ts.messageURL(sess.ID, details()), token, webmBytes(2000))
		if resp.StatusCode != http.StatusConflict {
			t.Fatalf("%d %s, want 409", resp.StatusCode, body)
		}
	})

	customer.waitingWhere("nobody could take the call yet", func(w wire.Waiting) bool { return w.TimedOut })

	t.Run("only this session's customer link may leave one", func(t *testing.T) {
		other := ts.createSession(t)
		for name, bearer := range map[string]string{
			"another session's customer link": linkToken(other.CustomerURL),
			"this session's specialist link":  linkToken(sess.SpecialistURL),
			"an API key":                      ts.APIKey,
		} {
			resp, body := upload(t, ts.messageURL(sess.ID, details()), bearer, webmBytes(2000))
			if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: %d %s, want 401 or 403", name, resp.StatusCode, body)
			}
		}
		// A customer link that never joined the waiting room.
		fresh, _, err := ts.issuer.IssueLink(orgID, sess.ID, auth.RoleCustomer, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if resp, body := upload(t, ts.messageURL(sess.ID, details()), fresh, webmBytes(2000)); resp.StatusCode != http.StatusForbidden {
			t.Errorf("a link that never joined: %d %s, want 403", resp.StatusCode, body)
		}
	})

	t.Run("uploads over the limit, of other types or with bad details store nothing", func(t *testing.T) {
		req, _ := http.NewRequest("POST", ts.messageURL(sess.ID, details()), strings.NewReader("x"))
		req.Header.Set("Authorization", "Bearer "+token)
		req.ContentLength = maxVideoMessageSize + 1
		if resp, err := http.DefaultClient.Do(req); err == nil {
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("declared too large: %d, want 413", resp.StatusCode)
			}
			resp.Body.Close()
		}
		// Streamed without a length: refused once the limit is passed.
		big := io.MultiReader(strings.NewReader(string(webmBytes(100))), io.LimitReader(zeros{}, maxVideoMessageSize))
		req, _ = http.NewRequest("POST", ts.messageURL(sess.ID, details()), big)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("streamed too large: %d, want 413", resp.StatusCode)
		}
		for name, body := range map[string][]byte{"a PNG": pngImage(t, 4, 4), "text": []byte("hello, this is not a video")} {
			if resp, data := upload(t, ts.messageURL(sess.ID, details()), token, body); resp.StatusCode != http.StatusUnsupportedMediaType {
				t.Errorf("%s: %d %s, want 415", name, resp.StatusCode, data)
			}
		}
		for field, value := range map[string]string{"phone": "12345", "email": "not an address", "duration_ms": "0", "language": "Spanish!"} {
			if resp, data := upload(t, ts.messageURL(sess.ID, details(field, value)), token, webmBytes(2000)); resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("%s=%q: %d %s, want 422", field, value, resp.StatusCode, data)
			}
		}
		// Interrupted: half the declared body, then the client stops sending.
		u, _ := url.Parse(ts.messageURL(sess.ID, details()))
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Length: 4000\r\n\r\n", u.RequestURI(), u.Host, token)
		_, _ = conn.Write(webmBytes(2000))
		_ = conn.(*net.TCPConn).CloseWrite()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("interrupted upload: %d, want 400", resp.StatusCode)
			}
			resp.Body.Close()
		}
		var list videoMessageList
		ts.do(t, "GET", "/v1/video-messages", ts.APIKey, nil, &list)
		if len(list.Data) != 0 {
			t.Errorf("refused uploads left messages: %+v", list.Data)
		}
		if keys := ts.sessionObjects(t, orgID, sess.ID); len(keys) != 0 {
			t.Errorf("refused uploads left objects: %v", keys)
		}
	})

	var msg videoMessageView
	recording := webmBytes(50_000)
	t.Run("the customer leaves a message after the queue timeout", func(t *testing.T) {
		resp, body := upload(t, ts.messageURL(sess.ID, details()), token, recording)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		_ = json.Unmarshal(body, &msg)
		if msg.ID == "" || msg.Reason != rooms.VideoMessageQueueTimeout || msg.ContentType != "video/webm" || msg.Size != int64(len(recording)) ||
			msg.DurationMS != 4200 || msg.Customer.Phone != "+34600111222" || msg.Customer.Email != "ana@example.com" || msg.State != "new" {
			t.Fatalf("message %+v", msg)
		}
		if msg.DownloadURL != "" {
			t.Error("the customer's reply carries a download URL")
		}
	})

	t.Run("it is in the inbox with a signed URL that serves the recording", func(t *testing.T) {
		var list videoMessageList
		ts.do(t, "GET", "/v1/video-messages?state=new", ts.APIKey, nil, &list)
		if len(list.Data) != 1 || list.Data[0].ID != msg.ID || list.Data[0].SessionID != sess.ID {
			t.Fatalf("list %+v", list)
		}
		var got videoMessageView
		if resp := ts.do(t, "GET", "/v1/video-messages/"+msg.ID, ts.APIKey, nil, &got); resp.StatusCode != 200 || got.DownloadURL == "" {
			t.Fatalf("get: %d %+v", resp.StatusCode, got)
		}
		resp, err := http.Get(got.DownloadURL)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/webm" || string(data) != string(recording) {
			t.Fatalf("download: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(data))
		}
	})

	t.Run("a webhook and an audit event announce it", func(t *testing.T) {
		ev := hooks.waitFor("video_message.received", func(ev hookEvent) bool { return ev.Type == webhooks.TypeVideoMessageReceived })
		var data struct {
			VideoMessageID string         `json:"video_message_id"`
			SessionID      string         `json:"session_id"`
			Customer       rooms.Customer `json:"customer"`
		}
		_ = json.Unmarshal(ev.Data, &data)
		if data.VideoMessageID != msg.ID || data.SessionID != sess.ID || data.Customer.Name != "Ana Ruiz" {
			t.Fatalf("webhook data %s", ev.Data)
		}
		var events struct {
			Data []struct {
				Action string `json:"action"`
				Target string `json:"target"`
			} `json:"data"`
		}
		ts.do(t, "GET", "/v1/audit-events?action="+actionVideoMessageReceive, ts.APIKey, nil, &events)
		if len(events.Data) != 1 || events.Data[0].Target != msg.ID {
			t.Fatalf("audit %+v", events.Data)
		}
	})

	t.Run("another organisation cannot reach it", func(t *testing.T) {
		key := otherOrgKey(t, ts)
		for _, r := range []struct{ method, path string }{
			{"GET", "/v1/video-messages/" + msg.ID}, {"PATCH", "/v1/video-messages/" + msg.ID},
			{"DELETE", "/v1/video-messages/" + msg.ID}, {"POST", "/v1/video-messages/" + msg.ID + "/call-back"},
		} {
			var body any
			if r.method == "PATCH" {
				body = map[string]string{"state": "handled"}
			}
			if resp := ts.do(t, r.method, r.path, key, body, nil); resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s from another organisation: %d, want 404", r.method, r.path, resp.StatusCode)
			}
		}
		var list videoMessageList
		ts.do(t, "GET", "/v1/video-messages", key, nil, &list)
		if len(list.Data) != 0 {
			t.Fatalf("another organisation lists %+v", list.Data)
		}
	})

	t.Run("a specialist calls the customer back by SMS and email", func(t *testing.T) {
		var got videoMessageView
		if resp := ts.do(t, "POST", "/v1/video-messages/"+msg.ID+"/call-back", ts.APIKey, map[string]any{}, &got); resp.StatusCode != http.StatusCreated {
			t.Fatalf("call back: %d", resp.StatusCode)
		}
		if got.State != "handled" || got.CallBack == nil || got.CallBack.SessionID == "" || got.CallBack.SessionID == sess.ID ||
			!strings.Contains(got.CallBack.CustomerURL, "/c/") || len(got.CallBack.Channels) != 2 {
			t.Fatalf("call back %+v", got)
		}
		ts.getSession(t, got.CallBack.SessionID) // the new session exists
		mail := mb.waitFor(t, "with the call-back link", 20*time.Second, to("ana@example.com"))
		if mail.Link() != got.CallBack.CustomerURL {
			t.Errorf("the email's link %q, want %q", mail.Link(), got.CallBack.CustomerURL)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			var now videoMessageView
			ts.do(t, "GET", "/v1/video-messages/"+msg.ID, ts.APIKey, nil, &now)
			sent := 0
			for _, n := range now.CallBack.Notifications {
				if n.State == "sent" {
					sent++
				}
			}
			if sent == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the call-back links were not both sent: %+v", now.CallBack.Notifications)
			}
			time.Sleep(100 * time.Millisecond)
		}
		texts := sms.sentTo("+34600111222")
		if len(texts) != 1 || !strings.Contains(texts[0].Body, got.CallBack.CustomerURL) {
			t.Fatalf("texts %+v", texts)
		}
		if resp := ts.do(t, "POST", "/v1/video-messages/"+msg.ID+"/call-back", ts.APIKey, map[string]any{}, nil); resp.StatusCode != http.StatusConflict {
			t.Fatalf("a second call-back: %d, want 409", resp.StatusCode)
		}
	})

	t.Run("it can be marked new and handled again", func(t *testing.T) {
		for _, state := range []string{"new", "handled"} {
			var got videoMessageView
			if resp := ts.do(t, "PATCH", "/v1/video-messages/"+msg.ID, ts.APIKey, map[string]string{"state": state}, &got); resp.StatusCode != 200 || got.State != state {
				t.Fatalf("mark %s: %d %+v", state, resp.StatusCode, got)
			}
		}
		if resp := ts.do(t, "PATCH", "/v1/video-messages/"+msg.ID, ts.APIKey, map[string]string{"state": "lost"}, nil); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("a bad state: %d, want 422", resp.StatusCode)
		}
	})

	t.Run("deleting it deletes the recording", func(t *testing.T) {
		var got videoMessageView
		ts.do(t, "GET", "/v1/video-messages/"+msg.ID, ts.APIKey, nil, &got)
		if resp := ts.do(t, "DELETE", "/v1/video-messages/"+msg.ID, ts.APIKey, nil, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("delete: %d", resp.StatusCode)
		}
		if resp := ts.do(t, "GET", "/v1/video-messages/"+msg.ID, ts.APIKey, nil, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("after delete: %d", resp.StatusCode)
		}
		resp, err := http.Get(got.DownloadURL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("download after delete: %d, want 404", resp.StatusCode)
		}
	})

	t.Run("one session takes a few messages, not a flood", func(t *testing.T) {
		for i := range maxVideoMessagesPerLink {
			if resp, body := upload(t, ts.messageURL(sess.ID, details()), token, webmBytes(1000)); resp.StatusCode != http.StatusCreated {
				t.Fatalf("message %d: %d %s", i+1, resp.StatusCode, body)
			}
		}
		resp, body := upload(t, ts.messageURL(sess.ID, details()), token, webmBytes(1000))
		if resp.StatusCode != http.StatusTooManyRequests || problemType(body) != "too-many-messages" {
			t.Fatalf("one more: %d %s, want 429", resp.StatusCode, body)
		}
	})
}

// otherOrgKey is an API key with the default scopes of a new, other organisation.
func otherOrgKey(t *testing.T, ts *testServer) string {
	t.Helper()
	other, err := ts.rooms.CreateOrganization(context.Background(), "Other")
	if err != nil {
		t.Fatal(err)
	}
	key := auth.NewAPIKey()
	if _, err := ts.rooms.AddAPIKey(context.Background(), other.ID, "other", auth.HashAPIKey(key), rooms.DefaultScopes()); err != nil {
		t.Fatal(err)
	}
	return key
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestOpeningHours: outside the organisation's hours a customer is offered a message as soon
// as they join, and may leave one without waiting for the queue timeout.
func TestOpeningHours(t *testing.T) {
	ts := newTestServer(t) // queue-timeout: the default 10 minutes
	// Open tomorrow (UTC) only: closed now, whatever the time.
	tomorrow := time.Now().UTC().AddDate(0, 0, 1)
	day := strings.ToLower(tomorrow.Weekday().String()[:3])
	opens := time.Date(tomorrow.Year(), tomorrow.Month(), tomorrow.Day(), 9, 0, 0, 0, time.UTC)
	hours := map[string]any{"time_zone": "UTC", "weekly": []map[string]any{{"days": []string{day}, "open": "09:00", "close": "17:00"}}}

	t.Run("bad hours are refused", func(t *testing.T) {
		for name, bad := range map[string]map[string]any{
			"an unknown time zone": {"time_zone": "Mars/Olympus", "weekly": []map[string]any{{"days": []string{"mon"}, "open": "09:00", "close": "17:00"}}},
			"close before open":    {"time_zone": "UTC", "weekly": []map[string]any{{"days": []string{"mon"}, "open": "17:00", "close": "09:00"}}},
			"an unknown day":       {"time_zone": "UTC", "weekly": []map[string]any{{"days": []string{"monday"}, "open": "09:00", "close": "17:00"}}},
			"a bad time":           {"time_zone": "UTC", "weekly": []map[string]any{{"days": []string{"mon"}, "open": "9", "close": "17:00"}}},
		} {
			if resp := ts.do(t, "PATCH", "/v1/organization", ts.APIKey, map[string]any{"policy": map[string]any{"opening_hours": bad}}, nil); resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("%s: %d, want 422", name, resp.StatusCode)
			}
		}
	})

	var org organizationView
	if resp := ts.do(t, "PATCH", "/v1/organization", ts.APIKey, map[string]any{"policy": map[string]any{"opening_hours": hours}}, &org); resp.StatusCode != 200 {
		t.Fatalf("set hours: %d", resp.StatusCode)
	}
	if org.Policy.OpeningHours == nil || len(org.Policy.OpeningHours.Weekly) != 1 {
		t.Fatalf("policy %+v", org.Policy)
	}

	sess := ts.createSession(t)
	token := linkToken(sess.CustomerURL)
	sock := ts.dial(t)
	sock.send(wire.TypeJoin, wire.Join{Token: token, Name: "Ben"})
	var after wire.AfterHours
	sock.expect(wire.TypeAfterHours, &after)
	if after.OpensAt == nil || !after.OpensAt.Equal(opens) {
		t.Fatalf("after_hours %+v, want the next opening at %s", after, opens)
	}
	resp, body := upload(t, ts.messageURL(sess.ID, details()), token, webmBytes(3000))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("a message after hours: %d %s", resp.StatusCode, body)
	}
	var msg videoMessageView
	_ = json.Unmarshal(body, &msg)
	if msg.Reason != rooms.VideoMessageAfterHours {
		t.Fatalf("reason %q", msg.Reason)
	}

	t.Run("while open nobody is told, and a message waits for the queue timeout", func(t *testing.T) {
		if resp := ts.do(t, "PATCH", "/v1/organization", ts.APIKey, map[string]any{"policy": map[string]any{"opening_hours": map[string]any{"weekly": []any{}}}}, &org); resp.StatusCode != 200 || org.Policy.OpeningHours != nil {
			t.Fatalf("clear hours: %d %+v", resp.StatusCode, org.Policy)
		}
		open := ts.createSession(t)
		sock := ts.dial(t)
		sock.send(wire.TypeJoin, wire.Join{Token: linkToken(open.CustomerURL), Name: "Cy"})
		sock.expect(wire.TypeWelcome, nil)
		for {
			env, err := sock.next()
			if err != nil {
				t.Fatal(err)
			}
			if env.Type == wire.TypeAfterHours {
				t.Fatal("told after_hours while open")
			}
			if env.Type == wire.TypeWaiting || env.Type == wire.TypeHistory {
				break // after_hours would have come first
			}
		}
		if resp, body := upload(t, ts.messageURL(open.ID, details()), linkToken(open.CustomerURL), webmBytes(3000)); resp.StatusCode != http.StatusConflict {
			t.Fatalf("%d %s, want 409", resp.StatusCode, body)
		}
	})
}
