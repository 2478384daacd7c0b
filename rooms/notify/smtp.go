package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// EmailSender delivers one rendered email. from is an RFC 5322 address ("Clinic
// <no-reply@clinic.example>"); empty means the sender's default. Errors marked Permanent are not
// retried.
type EmailSender interface {
	Send(ctx context.Context, from, to string, r Rendered) error
}

// StartTLSMode says whether the SMTP connection is upgraded to TLS.
type StartTLSMode string

// STARTTLS modes.
const (
	StartTLSRequire       StartTLSMode = "require"       // fail unless the server offers STARTTLS
	StartTLSOpportunistic StartTLSMode = "opportunistic" // use it when offered
	StartTLSNone          StartTLSMode = "none"          // plain text (a relay on the same host)
)

// SMTPConfig is an organisation's (or the platform's) mail server.
type SMTPConfig struct {
	Host     string
	Port     int    // 587 when zero
	Username string // with Password: AUTH PLAIN, only over TLS or to localhost
	Password string
	From     string       // default From address
	StartTLS StartTLSMode // StartTLSRequire when empty
	// TLSConfig verifies the server; nil uses the system roots. ServerName defaults to Host.
	TLSConfig *tls.Config
	HelloName string // the EHLO name; "localhost" when empty
}

// SMTPSender sends email through an SMTP server, one connection per message.
//
// Failures while connecting, greeting, starting TLS or authenticating are retried: they are about
// the server or its settings, which an operator can fix while the message waits. A 5xx reply to
// MAIL, RCPT or DATA is permanent (the server refused this message or recipient); 4xx is retried.
type SMTPSender struct {
	cfg SMTPConfig
}

// NewSMTPSender checks cfg.
func NewSMTPSender(cfg SMTPConfig) (*SMTPSender, error) {
	if cfg.Port == 0 {
		cfg.Port = 587
	}
	if cfg.StartTLS == "" {
		cfg.StartTLS = StartTLSRequire
	}
	if cfg.HelloName == "" {
		cfg.HelloName = "localhost"
	}
	switch {
	case cfg.Host == "":
		return nil, errors.New("notify: smtp: host is empty")
	case cfg.Port < 1 || cfg.Port > 65535:
		return nil, fmt.Errorf("notify: smtp: port %d", cfg.Port)
	case cfg.StartTLS != StartTLSRequire && cfg.StartTLS != StartTLSOpportunistic && cfg.StartTLS != StartTLSNone:
		return nil, fmt.Errorf("notify: smtp: starttls %q: use require, opportunistic or none", cfg.StartTLS)
	case (cfg.Username == "") != (cfg.Password == ""):
		return nil, errors.New("notify: smtp: set both username and password, or neither")
	case strings.ContainsAny(cfg.HelloName, " \r\n"):
		return nil, fmt.Errorf("notify: smtp: hello name %q", cfg.HelloName)
	}
	if cfg.From != "" {
		if _, err := mail.ParseAddress(cfg.From); err != nil {
			return nil, fmt.Errorf("notify: smtp: from %q: %w", cfg.From, err)
		}
	}
	return &SMTPSender{cfg: cfg}, nil
}

// Send delivers r to one recipient. The connection is closed when ctx ends.
func (s *SMTPSender) Send(ctx context.Context, from, to string, r Rendered) error {
	if from == "" {
		from = s.cfg.From
	}
	fromAddr, err := mail.ParseAddress(from)
	if err != nil {
		return Permanent(fmt.Errorf("notify: smtp: from %q: %w", from, err))
	}
	toAddr, err := mail.ParseAddress(to)
	if err != nil {
		return Permanent(fmt.Errorf("notify: smtp: to %q: %w", to, err))
	}
	msg, err := buildEmail(fromAddr, toAddr, r, time.Now())
	if err != nil {
		return Permanent(err)
	}

	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("notify: smtp: %w", err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) }) // unblock I/O now
	defer stop()

	if err := s.deliver(conn, fromAddr.Address, toAddr.Address, msg); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("notify: smtp %s: %w (%v)", addr, ctx.Err(), err)
		}
		return fmt.Errorf("notify: smtp %s: %w", addr, err)
	}
	return nil
}

func (s *SMTPSender) deliver(conn net.Conn, from, to string, msg []byte) error {
	c, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello(s.cfg.HelloName); err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	if s.cfg.StartTLS != StartTLSNone {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.tlsConfig()); err != nil {
				return fmt.Errorf("STARTTLS: %w", err)
			}
		} else if s.cfg.StartTLS == StartTLSRequire {
			return errors.New("the server does not offer STARTTLS, which the settings require")
		}
	}
	if s.cfg.Username != "" {
		if ok, mechs := c.Extension("AUTH"); !ok || !hasWord(mechs, "PLAIN") {
			return errors.New("the server does not offer AUTH PLAIN")
		}
		// net/smtp's PlainAuth refuses to send the password in clear, except to localhost.
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.cfg.Host)); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if err := c.Mail(from); err != nil {
		return messageError("MAIL FROM", err)
	}
	if err := c.Rcpt(to); err != nil {
		return messageError("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return messageError("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return messageError("end of DATA", err)
	}
	_ = c.Quit() // the server has taken the message; a failed QUIT changes nothing
	return nil
}

func (s *SMTPSender) tlsConfig() *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.cfg.TLSConfig != nil {
		cfg = s.cfg.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = s.cfg.Host
	}
	return cfg
}

// messageError marks a 5xx reply about this message as permanent.
func messageError(step string, err error) error {
	err = fmt.Errorf("%s: %w", step, err)
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 && te.Code < 600 {
		return Permanent(err)
	}
	return err
}

func hasWord(list, word string) bool {
	for w := range strings.FieldsSeq(list) {
		if strings.EqualFold(w, word) {
			return true
		}
	}
	return false
}

// buildEmail writes the message: headers with an encoded subject, the notification ID as the
// Message-ID, and a text part (plus an HTML alternative when there is one), quoted-printable.
func buildEmail(from, to *mail.Address, r Rendered, now time.Time) ([]byte, error) {
	id := r.ID
	if id == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	if !validMessageID(id) {
		return nil, fmt.Errorf("notify: notification id %q cannot be a Message-ID", id)
	}
	_, domain, _ := strings.Cut(from.Address, "@")

	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", from.String())
	header("To", to.String())
	header("Subject", encodeSubject(r.Subject))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", "<"+id+"@"+domain+">")
	if r.Language != "" && langRe.MatchString(r.Language) {
		header("Content-Language", r.Language)
	}
	header("Auto-Submitted", "auto-generated") // RFC 3834: autoresponders should not answer
	header("MIME-Version", "1.0")

	textHeader := textproto.MIMEHeader{
		"Content-Type":              {"text/plain; charset=utf-8"},
		"Content-Transfer-Encoding": {"quoted-printable"},
	}
	if r.HTML == "" {
		for k, v := range textHeader {
			header(k, v[0])
		}
		b.WriteString("\r\n")
		if err := writeQuotedPrintable(&b, r.Text); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	mw := multipart.NewWriter(&b)
	header("Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
	b.WriteString("\r\n")
	parts := []struct {
		header textproto.MIMEHeader
		body   string
	}{
		{textHeader, r.Text},
		{textproto.MIMEHeader{
			"Content-Type":              {"text/html; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		}, r.HTML},
	}
	for _, p := range parts {
		w, err := mw.CreatePart(p.header)
		if err != nil {
			return nil, err
		}
		if err := writeQuotedPrintable(w, p.body); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// encodeSubject encodes a non-ASCII subject as RFC 2047 Q encoded-words, one per folded line.
func encodeSubject(s string) string {
	return strings.ReplaceAll(mime.QEncoding.Encode("utf-8", s), "?= =?", "?=\r\n =?")
}

func writeQuotedPrintable(w io.Writer, text string) error {
	qp := quotedprintable.NewWriter(w) // not Binary: "\n" becomes CRLF
	if _, err := io.WriteString(qp, text+"\n"); err != nil {
		return err
	}
	return qp.Close()
}
