package signaling

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-video/assist/rooms/notify"
	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/config"
)

// TestBookingTextsTheCustomerTheirLink books an appointment and checks that the SMS provider
// (a local HTTP server speaking the signed-webhook shape) receives the link, in the customer's
// language, once, and that the appointment shows it as sent.
func TestBookingTextsTheCustomerTheirLink(t *testing.T) {
	const secret = "a shared secret for the sms webhook"
	var mu sync.Mutex
	var texts []notify.WebhookMessage
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.VerifyWebhook([]byte(secret), r.Header.Get(notify.SignatureHeader), body, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
			w.WriteHeader(401)
			return
		}
		var m notify.WebhookMessage
		_ = json.Unmarshal(body, &m)
		mu.Lock()
		texts = append(texts, m)
		mu.Unlock()
	}))
	defer provider.Close()

	cfg := config.Defaults()
	cfg.Addr, cfg.DataDir, cfg.BootstrapAPIKey, cfg.BootstrapPassword = "127.0.0.1:0", t.TempDir(), testAPIKey, testPassword
	cfg.SMSProvider, cfg.SMSURL, cfg.SMSSecret = "webhook", provider.URL, secret
	ts := startTestServer(t, cfg)

	var a api.Appointment
	start := time.Now().Add(24 * time.Hour)
	resp := ts.do(t, "POST", "/v1/appointments", ts.APIKey, api.CreateAppointment{Start: start, End: start.Add(time.Hour),
		Customer: api.Customer{Name: "Ana", Phone: "+34600000000", Language: "es"}}, &a)
	if resp.StatusCode != 201 {
		t.Fatalf("book: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var got api.Appointment
		ts.do(t, "GET", "/v1/appointments/"+a.ID, ts.APIKey, nil, &got)
		if len(got.Notifications) == 1 && got.Notifications[0].State == "sent" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notification never sent: %+v", got.Notifications)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(texts) != 1 || texts[0].To != "+34600000000" || !strings.Contains(texts[0].Body, a.CustomerURL) {
		t.Fatalf("texts = %+v", texts)
	}
	t.Logf("the customer got: %q", texts[0].Body)
}

// callAs calls the notification settings route with a bearer.
func callAs(t *testing.T, ts *testServer, bearer, method string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = strings.NewReader(string(data))
	}
	req, _ := http.NewRequest(method, ts.URL+"/v1/notification-settings", rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func TestOrganisationsOwnProviders(t *testing.T) {
	mb := startMailbox(t)
	const secret = "the organisation's own webhook secret"
	var mu sync.Mutex
	var texts []notify.WebhookMessage
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.VerifyWebhook([]byte(secret), r.Header.Get(notify.SignatureHeader), body, time.Now(), time.Minute); err != nil {
			w.WriteHeader(401)
			return
		}
		var m notify.WebhookMessage
		_ = json.Unmarshal(body, &m)
		mu.Lock()
		texts = append(texts, m)
		mu.Unlock()
	}))
	defer provider.Close()
	ts := newTestServer(t) // the node itself has no email or SMS provider

	t.Run("without settings the node's providers are used", func(t *testing.T) {
		code, body := callAs(t, ts, ts.APIKey, "GET", nil)
		if code != 200 || string(body) != `{"email":null,"sms":null}`+"\n" {
			t.Fatalf("GET: %d %s", code, body)
		}
	})

	t.Run("only administrators set them, and bad ones are refused", func(t *testing.T) {
		bearers := matrixCallers(t, ts)
		if code, _ := callAs(t, ts, bearers[asSpecialist], "PUT", notificationSettings{}); code != http.StatusForbidden {
			t.Fatalf("a specialist who is not an admin: %d", code)
		}
		code, body := callAs(t, ts, ts.APIKey, "PUT", map[string]any{"email": map[string]any{"from": "nobody"}})
		if code != http.StatusUnprocessableEntity || !strings.Contains(string(body), "email.from") {
			t.Fatalf("bad from: %d %s", code, body)
		}
	})

	code, body := callAs(t, ts, ts.APIKey, "PUT", map[string]any{
		"email": map[string]any{"from": "Clinic <hello@clinic.example>", "smtp_host": "127.0.0.1", "smtp_port": mb.port, "smtp_starttls": "none"},
		"sms":   map[string]any{"provider": "webhook", "url": provider.URL, "secret": secret},
	})
	if code != 200 {
		t.Fatalf("PUT: %d %s", code, body)
	}

	t.Run("secrets are never shown", func(t *testing.T) {
		_, got := callAs(t, ts, ts.APIKey, "GET", nil)
		for _, b := range [][]byte{body, got} {
			var v notificationSettings
			_ = json.Unmarshal(b, &v)
			if strings.Contains(string(b), secret) || v.SMS == nil || v.SMS.Secret != "********" || v.Email == nil || v.Email.SMTPHost != "127.0.0.1" {
				t.Fatalf("shown: %s", b)
			}
		}
	})

	t.Run("the organisation's providers send its notifications", func(t *testing.T) {
		a := ts.bookFor(t, time.Now().Add(24*time.Hour), api.Customer{Name: "Ada", Email: "ada@example.com", Phone: "+4915112345678"})
		m := mb.waitFor(t, "booking Ada", 15*time.Second, kindTo("booked", "ada@example.com"))
		if from, err := mail.ParseAddress(m.From); err != nil || from.Address != "hello@clinic.example" || from.Name != "Clinic" || m.Link() != a.CustomerURL {
			t.Fatalf("from %q, link %q", m.From, m.Link())
		}
		for _, n := range a.Notifications {
			if n := ts.waitNotificationID(t, a.ID, n.ID); n.State != "sent" {
				t.Fatalf("notification %+v", n)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(texts) != 1 || texts[0].To != "+4915112345678" || !strings.Contains(texts[0].Body, a.CustomerURL) {
			t.Fatalf("texts %+v", texts)
		}
	})

	t.Run("deleting them falls back to the node's (none here)", func(t *testing.T) {
		if code, _ := callAs(t, ts, ts.APIKey, "DELETE", nil); code != http.StatusNoContent {
			t.Fatalf("DELETE: %d", code)
		}
		a := ts.bookFor(t, time.Now().Add(24*time.Hour), api.Customer{Name: "Bo", Email: "bo@example.com"})
		if n := ts.waitNotification(t, a.ID, "booked"); n.State != "failed" || !strings.Contains(n.LastError, "no provider") {
			t.Fatalf("after delete: %+v", n)
		}
	})
}

// waitNotificationID waits until one notification of the appointment is in a final state.
func (ts *testServer) waitNotificationID(t *testing.T, appointmentID, id string) api.Notification {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, n := range ts.appointment(t, appointmentID).Notifications {
			if n.ID == id && (n.State == "sent" || n.State == "failed" || n.State == "skipped") {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("notification %s never finished", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
