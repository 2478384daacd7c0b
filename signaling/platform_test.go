package signaling

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/rooms/webhooks"
	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/wire"
)

type receivedHook struct {
	Type string          `json:"type"`
	ID   string          `json:"id"`
	Data json.RawMessage `json:"data"`
}

func TestWebhooksFollowTheSession(t *testing.T) {
	ts := newTestServer(t)
	var mu sync.Mutex
	var got []receivedHook
	var secret string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := webhooks.VerifySignature(secret, r.Header, body, time.Minute); err != nil {
			t.Errorf("bad signature: %v", err)
			w.WriteHeader(400)
			return
		}
		var h receivedHook
		_ = json.Unmarshal(body, &h)
		got = append(got, h)
	}))
	defer receiver.Close()

	var ep struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	resp := ts.do(t, "POST", "/v1/webhooks", ts.APIKey, map[string]any{"url": receiver.URL, "events": []string{"*"}}, &ep)
	if resp.StatusCode != 201 || ep.Secret == "" {
		t.Fatalf("register: %d %+v", resp.StatusCode, ep)
	}
	mu.Lock()
	secret = ep.Secret
	mu.Unlock()

	s := ts.createSession(t)
	customer := ts.dial(t)
	customer.send(wire.TypeJoin, wire.Join{Token: linkToken(s.CustomerURL)})
	customer.expect(wire.TypeWaiting, nil)
	ts.do(t, "POST", "/v1/sessions/"+s.ID+"/end", ts.APIKey, nil, nil)

	want := []string{webhooks.TypeSessionCreated, webhooks.TypeSessionWaiting, webhooks.TypeSessionEnded}
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		types := map[string]bool{}
		for _, h := range got {
			if strings.Contains(string(h.Data), s.ID) {
				types[h.Type] = true
			}
		}
		mu.Unlock()
		missing := []string{}
		for _, w := range want {
			if !types[w] {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhooks never received: %v", missing)
		}
		time.Sleep(50 * time.Millisecond)
	}

	var log struct {
		Data []webhooks.Delivery `json:"data"`
	}
	ts.do(t, "GET", "/v1/webhooks/"+ep.ID+"/deliveries", ts.APIKey, nil, &log)
	if len(log.Data) < 3 {
		t.Fatalf("delivery log has %d entries", len(log.Data))
	}
	if resp := ts.do(t, "POST", "/v1/webhooks", ts.APIKey, map[string]any{"url": "ftp://x", "events": []string{"*"}}, nil); resp.StatusCode != 422 {
		t.Fatalf("a bad endpoint URL: %d", resp.StatusCode)
	}
}

func TestAuditTrailRecordsWhoDidWhat(t *testing.T) {
	ts := newTestServer(t)
	var login api.LoginResult
	ts.do(t, "POST", "/v1/auth/login", "", api.Login{Email: testEmail, Password: testPassword}, &login)
	ts.do(t, "POST", "/v1/auth/login", "", api.Login{Email: testEmail, Password: "not the password"}, nil)
	c := ts.startCall(t)
	c.specialist.send(wire.TypeGeolocationRequest, wire.Empty{})
	c.customer.expect(wire.TypeGeolocationRequest, nil)

	want := []string{audit.ActionSignIn, audit.ActionSignInFailed, audit.ActionSessionCreate, audit.ActionParticipantAdmit, audit.ActionGeolocationRequest}
	var page struct {
		Data []audit.Event `json:"data"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ts.do(t, "GET", "/v1/audit-events", ts.APIKey, nil, &page)
		seen := map[string]bool{}
		for _, e := range page.Data {
			seen[e.Action] = true
		}
		ok := true
		for _, a := range want {
			ok = ok && seen[a]
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit trail lacks some of %v: %+v", want, page.Data)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, e := range page.Data {
		if e.Action == audit.ActionParticipantAdmit && (e.Actor.Kind != audit.ActorSpecialist || e.SessionID != c.session.ID || e.Target != c.customerID) {
			t.Fatalf("admit recorded as %+v", e)
		}
	}

	resp, err := http.NewRequest("GET", ts.URL+"/v1/audit-events?format=csv&action="+audit.ActionParticipantAdmit, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Header.Set("Authorization", "Bearer "+ts.APIKey)
	r, err := http.DefaultClient.Do(resp)
	if err != nil {
		t.Fatal(err)
	}
	csv, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if lines := strings.Split(strings.TrimSpace(string(csv)), "\n"); len(lines) != 2 || !strings.Contains(lines[1], c.customerID) {
		t.Fatalf("csv export:\n%s", csv)
	}
}
