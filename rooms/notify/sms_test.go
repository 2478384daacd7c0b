package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	twilioSID   = "AC0123456789abcdef"
	twilioToken = "twilio-token"
	twilioFrom  = "+15005550006"
)

var webhookSecret = []byte("0123456789abcdef-shared")

// smsProvider is an httptest server playing one SMS provider: it checks each request the way
// the real one would, answers with the next scripted status (201/204 once the script runs out)
// and keeps what it accepted.
type smsProvider struct {
	*httptest.Server
	mu       sync.Mutex
	script   []int // statuses to answer, in order
	requests []smsRequest
	problems []string // requests that did not check out
}

type smsRequest struct{ ID, To, Body string }

func (p *smsProvider) next() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.script) == 0 {
		return 0
	}
	code := p.script[0]
	p.script = p.script[1:]
	return code
}

func (p *smsProvider) record(r smsRequest, problem string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if problem != "" {
		p.problems = append(p.problems, problem)
	}
	p.requests = append(p.requests, r)
}

func (p *smsProvider) seen() ([]smsRequest, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]smsRequest(nil), p.requests...), append([]string(nil), p.problems...)
}

func startTwilio(t *testing.T, script ...int) *smsProvider {
	p := &smsProvider{script: script}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var problem string
		user, pass, ok := r.BasicAuth()
		switch {
		case r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/"+twilioSID+"/Messages.json":
			problem = r.Method + " " + r.URL.Path
		case !ok || user != twilioSID || pass != twilioToken:
			w.WriteHeader(http.StatusUnauthorized)
			p.record(smsRequest{}, "bad basic auth")
			return
		case r.Header.Get("Content-Type") != "application/x-www-form-urlencoded":
			problem = "content type " + r.Header.Get("Content-Type")
		}
		if err := r.ParseForm(); err != nil {
			problem = err.Error()
		}
		if r.PostForm.Get("From") != twilioFrom && r.PostForm.Get("MessagingServiceSid") == "" {
			problem = "no sender"
		}
		p.record(smsRequest{To: r.PostForm.Get("To"), Body: r.PostForm.Get("Body")}, problem)
		w.Header().Set("Content-Type", "application/json")
		switch code := p.next(); code {
		case 0, http.StatusCreated:
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"sid":"SM1","status":"queued"}`)
		case http.StatusBadRequest:
			w.WriteHeader(code)
			_, _ = io.WriteString(w, `{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}`)
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(code)
			_, _ = io.WriteString(w, `{"code":20429,"message":"Too Many Requests","status":429}`)
		default:
			w.WriteHeader(code)
			_, _ = io.WriteString(w, "<html>Service Unavailable</html>")
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *smsProvider) twilio(t *testing.T) SMSSender {
	s, err := NewTwilioSender(TwilioConfig{BaseURL: p.URL, AccountSID: twilioSID, AuthToken: twilioToken, From: twilioFrom})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startWebhook(t *testing.T, script ...int) *smsProvider {
	p := &smsProvider{script: script}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := VerifyWebhook(webhookSecret, r.Header.Get(SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			p.record(smsRequest{}, err.Error())
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var m WebhookMessage
		var problem string
		if err := json.Unmarshal(body, &m); err != nil {
			problem = err.Error()
		}
		if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Idempotency-Key") != m.ID {
			problem = "headers " + r.Header.Get("Content-Type") + " " + r.Header.Get("Idempotency-Key")
		}
		p.record(smsRequest(m), problem)
		switch code := p.next(); code {
		case 0:
			w.WriteHeader(http.StatusNoContent)
		case http.StatusBadRequest:
			http.Error(w, `{"error":"number +33612345678 is on the block list"}`, code)
		default:
			w.WriteHeader(code)
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *smsProvider) webhook(t *testing.T, secret []byte) SMSSender {
	s, err := NewWebhookSender(WebhookConfig{URL: p.URL + "/sms", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTwilioSender(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("a 201 is sent, with the fields and basic auth Twilio wants", func(t *testing.T) {
		p := startTwilio(t)
		if err := p.twilio(t).Send(ctx, "+33612345678", "Bonjour ✓", "n1"); err != nil {
			t.Fatal(err)
		}
		reqs, problems := p.seen()
		if len(problems) > 0 || len(reqs) != 1 || reqs[0].To != "+33612345678" || reqs[0].Body != "Bonjour ✓" {
			t.Fatalf("%+v %v", reqs, problems)
		}
	})
	t.Run("a wrong token is refused for good", func(t *testing.T) {
		p := startTwilio(t)
		s, _ := NewTwilioSender(TwilioConfig{BaseURL: p.URL, AccountSID: twilioSID, AuthToken: "nope", From: twilioFrom})
		if err := s.Send(ctx, "+33612345678", "x", "n1"); !IsPermanent(err) || !strings.Contains(err.Error(), "401") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a 400 is permanent and says why", func(t *testing.T) {
		p := startTwilio(t, http.StatusBadRequest)
		err := p.twilio(t).Send(ctx, "+33612345678", "x", "n1")
		if !IsPermanent(err) || !strings.Contains(err.Error(), "not a valid phone number. (code 21211)") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a 429 is retried after the time Twilio asks", func(t *testing.T) {
		p := startTwilio(t, http.StatusTooManyRequests)
		err := p.twilio(t).Send(ctx, "+33612345678", "x", "n1")
		if after, ok := retryAfter(err); err == nil || IsPermanent(err) || !ok || after != 7*time.Second {
			t.Fatalf("err = %v, retry after %v", err, after)
		}
	})
	t.Run("a 503 is retried", func(t *testing.T) {
		p := startTwilio(t, http.StatusServiceUnavailable)
		if err := p.twilio(t).Send(ctx, "+33612345678", "x", "n1"); err == nil || IsPermanent(err) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a provider that cannot be reached is retried", func(t *testing.T) {
		p := startTwilio(t)
		s := p.twilio(t)
		p.Close()
		if err := s.Send(ctx, "+33612345678", "x", "n1"); err == nil || IsPermanent(err) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestWebhookSender(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("a signed post is accepted", func(t *testing.T) {
		p := startWebhook(t)
		if err := p.webhook(t, webhookSecret).Send(ctx, "+33612345678", "Hallo", "apt_1.booked.sms.1"); err != nil {
			t.Fatal(err)
		}
		reqs, problems := p.seen()
		want := smsRequest{ID: "apt_1.booked.sms.1", To: "+33612345678", Body: "Hallo"}
		if len(problems) > 0 || len(reqs) != 1 || reqs[0] != want {
			t.Fatalf("%+v %v", reqs, problems)
		}
	})
	t.Run("a post signed with another secret is refused by the receiver, for good", func(t *testing.T) {
		p := startWebhook(t)
		err := p.webhook(t, []byte("another-secret-of-16")).Send(ctx, "+33612345678", "Hallo", "n1")
		if !IsPermanent(err) || !strings.Contains(err.Error(), "401") {
			t.Fatalf("err = %v", err)
		}
		if _, problems := p.seen(); len(problems) != 1 || !strings.Contains(problems[0], "no matching signature") {
			t.Fatalf("problems %v", problems)
		}
	})
}

func TestVerifyWebhook(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"n1","to":"+33612345678","body":"x"}`)
	good := SignWebhook(webhookSecret, now, body)
	cases := []struct {
		name   string
		header string
		body   []byte
		at     time.Time
		ok     bool
	}{
		{"the signature of the body", good, body, now, true},
		{"a rotated secret listed second", SignWebhook([]byte("old-secret-000000"), now, body) + "," + strings.Split(good, ",")[1], body, now, true},
		{"a changed body", good, []byte(`{"id":"n1","to":"+33600000000","body":"x"}`), now, false},
		{"a replay after the tolerance", good, body, now.Add(6 * time.Minute), false},
		{"a malformed header", "v1=abc", body, now, false},
		{"no header", "", body, now, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifyWebhook(webhookSecret, c.header, c.body, c.at, 5*time.Minute)
			if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrBadSignature)) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"12", 12 * time.Second, true},
		{"Mon, 02 Mar 2026 12:00:30 GMT", 30 * time.Second, true},
		{"999999", time.Hour, true},
		{"soon", 0, false},
	}
	for _, c := range cases {
		if got, ok := parseRetryAfter(c.in, now); got != c.want || ok != c.ok {
			t.Errorf("%q: %v %v", c.in, got, ok)
		}
	}
}
