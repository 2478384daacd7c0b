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
