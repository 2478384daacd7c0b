package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func TestSMTPSenderDeliversOverSTARTTLSWithAuth(t *testing.T) {
	pki := newTestPKI(t)
	srv := startSMTP(t, pki.server)
	sender, err := NewSMTPSender(srv.config(pki))
	if err != nil {
		t.Fatal(err)
	}
	msg := testMessage("apt_1.reminder.email.3", ChannelEmail, KindReminder, "fr")
	r, err := NewTemplates().Render("org_test", msg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sender.Send(ctx, "", msg.To, r); err != nil {
		t.Fatal(err)
	}
	got := srv.nextMail(t)

	t.Run("the session was encrypted and authenticated", func(t *testing.T) {
		if !got.TLS || got.AuthUser != smtpUser {
			t.Fatalf("tls=%v auth=%q", got.TLS, got.AuthUser)
		}
		if got.From != "no-reply@clinic.example" || len(got.To) != 1 || got.To[0] != "ann@example.org" {
			t.Fatalf("envelope %q → %q", got.From, got.To)
		}
	})
	t.Run("the headers carry the encoded subject and the notification id", func(t *testing.T) {
		h := got.Msg.Header
		subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
		if err != nil {
			t.Fatal(err)
		}
		if subject != "Rappel : votre rendez-vous vidéo avec Example Clinic le lundi 2 mars 2026 à 14:30" {
			t.Fatalf("subject %q (raw %q)", subject, h.Get("Subject"))
		}
		if !strings.HasPrefix(h.Get("Subject"), "=?utf-8?q?") {
			t.Errorf("a non-ASCII subject must be Q-encoded: %q", h.Get("Subject"))
		}
		if h.Get("Message-Id") != "<apt_1.reminder.email.3@clinic.example>" {
			t.Errorf("Message-ID %q", h.Get("Message-Id"))
		}
		from, err := mail.ParseAddress(h.Get("From"))
		if err != nil || from.Name != "Example Clinic" || from.Address != "no-reply@clinic.example" {
			t.Errorf("From %q: %v", h.Get("From"), err)
		}
		if h.Get("Content-Language") != "fr" || h.Get("Auto-Submitted") != "auto-generated" || h.Get("MIME-Version") != "1.0" {
			t.Errorf("headers %v", h)
		}
		if _, err := mail.ParseDate(h.Get("Date")); err != nil {
			t.Errorf("Date %q: %v", h.Get("Date"), err)
		}
	})
	t.Run("the body is multipart/alternative with the same words in both parts", func(t *testing.T) {
		parts := readParts(t, got.Msg)
		text, html := parts["text/plain"], parts["text/html"]
		for _, want := range []string{"Bonjour Ann Martin,", "lundi 2 mars 2026, de 14:30 à 15:00 (Europe/Paris)", msg.Data.Link} {
			if !strings.Contains(text, want) {
				t.Errorf("text part lacks %q:\n%s", want, text)
			}
		}
		if !strings.Contains(html, `<a href="https://assist.example/c/eyJhbGciOiJIUzI1NiJ9.abc?x=1&amp;y=2">`) ||
			!strings.Contains(html, "Nous vous rappelons") {
			t.Errorf("html part:\n%s", html)
		}
	})
}

// readParts decodes a multipart/alternative body into its parts by media type.
func readParts(t *testing.T, m *mail.Message) map[string]string {
	t.Helper()
	mediaType, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	out := map[string]string{}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, cp, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if cp["charset"] != "utf-8" || p.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
			t.Fatalf("part headers %v", p.Header)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		out[ct] = string(body)
	}
}

func TestSMTPSenderFailures(t *testing.T) {
	pki := newTestPKI(t)
	r := Rendered{ID: "n1", Subject: "Hello", Text: "Hello"}
	send := func(cfg SMTPConfig, to string) error {
		t.Helper()
		sender, err := NewSMTPSender(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return sender.Send(ctx, "", to, r)
	}

	t.Run("a refused recipient is permanent", func(t *testing.T) {
		srv := startSMTP(t, pki.server)
		srv.setReject("gone@example.org", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"})
		err := send(srv.config(pki), "gone@example.org")
		if !IsPermanent(err) || !strings.Contains(err.Error(), "No such user") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a recipient deferred with 4xx is retried", func(t *testing.T) {
		srv := startSMTP(t, pki.server)
		srv.setReject("busy@example.org", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try later"})
		if err := send(srv.config(pki), "busy@example.org"); err == nil || IsPermanent(err) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a server without STARTTLS is refused when TLS is required", func(t *testing.T) {
		srv := startSMTP(t, nil)
		err := send(srv.config(pki), "ann@example.org")
		if err == nil || !strings.Contains(err.Error(), "STARTTLS") || IsPermanent(err) {
			t.Fatalf("err = %v", err)
		}
		if len(srv.all()) != 0 {
			t.Fatal("mail went out in clear")
		}
	})
	t.Run("a certificate we do not trust stops the send", func(t *testing.T) {
		srv := startSMTP(t, pki.server)
		cfg := srv.config(pki)
		cfg.TLSConfig = &tls.Config{RootCAs: x509.NewCertPool()}
		err := send(cfg, "ann@example.org")
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a wrong password stops the send", func(t *testing.T) {
		srv := startSMTP(t, pki.server)
		cfg := srv.config(pki)
		cfg.Password = "wrong"
		err := send(cfg, "ann@example.org")
		if err == nil || !strings.Contains(err.Error(), "AUTH") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a server that never answers is given up when the context ends", func(t *testing.T) {
		srv := startSMTP(t, pki.server)
		release := make(chan struct{})
		defer close(release)
		srv.setOnData(func(int) { <-release })
		sender, err := NewSMTPSender(srv.config(pki))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		err = sender.Send(ctx, "", "ann@example.org", r)
		if err == nil || IsPermanent(err) || time.Since(start) > 5*time.Second {
			t.Fatalf("err = %v after %v", err, time.Since(start))
		}
	})
	t.Run("settings are checked", func(t *testing.T) {
		for _, cfg := range []SMTPConfig{
			{},
			{Host: "mail.example", StartTLS: "sometimes"},
			{Host: "mail.example", Username: "u"},
			{Host: "mail.example", From: "not an address"},
			{Host: "mail.example", Port: 70000},
		} {
			if _, err := NewSMTPSender(cfg); err == nil {
				t.Errorf("%+v accepted", cfg)
			}
		}
	})
}

func TestSMTPOpportunisticTLS(t *testing.T) {
	pki := newTestPKI(t)
	r := Rendered{ID: "n1", Subject: "Hello", Text: "Hello"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("uses STARTTLS when the server offers it", func(t *testing.T) {
		srv := startSMTP(t, pki.server)
		cfg := srv.config(pki)
		cfg.StartTLS = StartTLSOpportunistic
		sender, err := NewSMTPSender(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := sender.Send(ctx, "", "ann@example.org", r); err != nil {
			t.Fatal(err)
		}
		if got := srv.nextMail(t); !got.TLS || got.AuthUser != smtpUser {
			t.Fatalf("tls=%v auth=%q", got.TLS, got.AuthUser)
		}
	})
	t.Run("never sends the password over a connection that stayed plain", func(t *testing.T) {
		srv := startSMTP(t, nil) // no STARTTLS, so no AUTH either
		cfg := srv.config(pki)
		cfg.StartTLS = StartTLSOpportunistic
		sender, err := NewSMTPSender(cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = sender.Send(ctx, "", "ann@example.org", r)
		if err == nil || !strings.Contains(err.Error(), "AUTH PLAIN") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestEmailWithoutHTMLIsOnePlainPart(t *testing.T) {
	from, to := &mail.Address{Address: "a@clinic.example"}, &mail.Address{Name: "Zoë", Address: "z@example.org"}
	raw, err := buildEmail(from, to, Rendered{ID: "x1", Subject: "Plain", Text: "Line one\nLine two: ümlaut"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if ct := m.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	if m.Header.Get("Subject") != "Plain" || m.Header.Get("Message-Id") != "<x1@clinic.example>" {
		t.Fatalf("headers %v", m.Header)
	}
	if addr, err := mail.ParseAddress(m.Header.Get("To")); err != nil || addr.Name != "Zoë" {
		t.Fatalf("To %q: %v", m.Header.Get("To"), err)
	}
	body, _ := io.ReadAll(quotedprintable.NewReader(m.Body))
	if string(body) != "Line one\r\nLine two: ümlaut\r\n" {
		t.Fatalf("body %q", body)
	}
	if strings.Contains(string(raw), "\n") && strings.Count(string(raw), "\n") != strings.Count(string(raw), "\r\n") {
		t.Fatal("bare LF in the message")
	}
	if _, err := buildEmail(from, to, Rendered{ID: "bad id>", Text: "x"}, time.Now()); err == nil {
		t.Fatal("an id that cannot be a Message-ID was accepted")
	}
}
