package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// SMSSender delivers one text message. id is the notification ID, for providers that can
// de-duplicate. Errors marked Permanent are not retried.
type SMSSender interface {
	Send(ctx context.Context, to, body, id string) error
}

const (
	maxResponseBytes = 64 << 10
	maxRetryAfter    = time.Hour
	defaultHTTPWait  = 30 * time.Second
)

// TwilioConfig is an account on Twilio, or on any provider with the same Messages API.
type TwilioConfig struct {
	BaseURL    string // "https://api.twilio.com" when empty
	AccountSID string
	AuthToken  string
	// From is the sender: an E.164 number, an alphanumeric sender id, or a Messaging Service
	// SID ("MG…"), which is sent as MessagingServiceSid.
	From       string
	HTTPClient *http.Client // a client with a 30 s timeout when nil
}

// TwilioSender sends SMS with POST {BaseURL}/2010-04-01/Accounts/{AccountSID}/Messages.json.
// 2xx (Twilio answers 201) is sent; 429 and 408 are retried, honouring Retry-After; other 4xx
// are permanent (a bad number, a refused sender); 5xx and network failures are retried.
type TwilioSender struct {
	cfg      TwilioConfig
	endpoint string
	client   *http.Client
}

// NewTwilioSender checks cfg.
func NewTwilioSender(cfg TwilioConfig) (*TwilioSender, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.twilio.com"
	}
	base, err := url.Parse(cfg.BaseURL)
	switch {
	case err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "":
		return nil, fmt.Errorf("notify: twilio: base URL %q", cfg.BaseURL)
	case cfg.AccountSID == "" || strings.ContainsAny(cfg.AccountSID, "/?#"):
		return nil, fmt.Errorf("notify: twilio: account SID %q", cfg.AccountSID)
	case cfg.AuthToken == "":
		return nil, errors.New("notify: twilio: auth token is empty")
	case cfg.From == "":
		return nil, errors.New("notify: twilio: from is empty")
	}
	return &TwilioSender{
		cfg:      cfg,
		endpoint: strings.TrimRight(cfg.BaseURL, "/") + "/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json",
		client:   httpClient(cfg.HTTPClient),
	}, nil
}

// Send posts one message. Twilio's Messages API has no idempotency key, so id is not sent.
func (s *TwilioSender) Send(ctx context.Context, to, body, id string) error {
	form := url.Values{"To": {to}, "Body": {body}}
	if strings.HasPrefix(s.cfg.From, "MG") {
		form.Set("MessagingServiceSid", s.cfg.From)
	} else {
		form.Set("From", s.cfg.From)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Permanent(err)
	}
	req.SetBasicAuth(s.cfg.AccountSID, s.cfg.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return doHTTP(s.client, req, "twilio", func(data []byte) string {
		var e struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &e) != nil || e.Message == "" {
			return snippet(data)
		}
		return fmt.Sprintf("%s (code %d)", e.Message, e.Code)
	})
}

// WebhookConfig is an organisation's own SMS gateway, reached with a signed JSON POST.
type WebhookConfig struct {
	URL        string
	Secret     []byte       // the shared HMAC key; at least 16 bytes
	HTTPClient *http.Client // a client with a 30 s timeout when nil
	Now        func() time.Time
}

// WebhookMessage is the JSON body the webhook adapter posts.
type WebhookMessage struct {
	ID   string `json:"id"` // the notification ID: the same ID is the same message
	To   string `json:"to"`
	Body string `json:"body"`
}

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">".
const SignatureHeader = "X-Assist-Signature"

// ErrBadSignature is what VerifyWebhook returns for a signature that does not check out.
var ErrBadSignature = errors.New("notify: bad webhook signature")

// WebhookSender posts WebhookMessage to a URL, signed with SignatureHeader, and the notification
// ID again in an Idempotency-Key header. 2xx is sent; 408 and 429 are retried (honouring
// Retry-After); other 4xx are permanent; 5xx and network failures are retried.
type WebhookSender struct {
	cfg    WebhookConfig
	client *http.Client
}

// NewWebhookSender checks cfg.
func NewWebhookSender(cfg WebhookConfig) (*WebhookSender, error) {
	u, err := url.Parse(cfg.URL)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return nil, fmt.Errorf("notify: sms webhook: URL %q", cfg.URL)
	case len(cfg.Secret) < 16:
		return nil, errors.New("notify: sms webhook: the secret must be at least 16 bytes")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &WebhookSender{cfg: cfg, client: httpClient(cfg.HTTPClient)}, nil
}

// Send posts one message.
func (s *WebhookSender) Send(ctx context.Context, to, body, id string) error {
	payload, err := json.Marshal(WebhookMessage{ID: id, To: to, Body: body})
	if err != nil {
		return Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(payload))
	if err != nil {
		return Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, SignWebhook(s.cfg.Secret, s.cfg.Now(), payload))
	if id != "" {
		req.Header.Set("Idempotency-Key", id)
	}
	return doHTTP(s.client, req, "sms webhook", snippet)
}

// SignWebhook is the SignatureHeader value for body sent at t.
func SignWebhook(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(webhookMAC(secret, ts, body))
}

func webhookMAC(secret []byte, ts string, body []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// VerifyWebhook checks a SignatureHeader value, for receivers (and tests): the HMAC must match
// and the timestamp must be within tolerance of now, so a captured request cannot be replayed
// later. Several v1 entries are allowed (one per secret while rotating).
func VerifyWebhook(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for field := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(field), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: malformed header", ErrBadSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp outside the tolerance", ErrBadSignature)
	}
	want := webhookMAC(secret, ts, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no matching signature", ErrBadSignature)
}

func httpClient(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return &http.Client{Timeout: defaultHTTPWait}
}

// doHTTP sends req and classifies the answer; detail turns an error body into a reason.
func doHTTP(client *http.Client, req *http.Request, provider string, detail func([]byte) string) error {
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("notify: %s: %w", provider, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("notify: %s: HTTP %d: %s", provider, resp.StatusCode, detail(data))
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500:
		if after, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return &retryAfterError{err: err, after: after}
		}
		return err
	case code >= 400:
		return Permanent(err)
	default:
		return err
	}
}

// parseRetryAfter reads seconds or an HTTP date, capped at maxRetryAfter.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if sec, err := strconv.Atoi(v); err == nil && sec >= 0 {
		d = time.Duration(sec) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0, false
	}
	return min(max(d, 0), maxRetryAfter), true
}

// snippet is the start of a response body on one line, for an error message.
func snippet(data []byte) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, string(data))
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	if s == "" {
		return "no body"
	}
	return s
}
