package signaling

import (
	"context"
	"io"
	"log"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/assist-video/assist/signaling/config"
)

// mailbox is a real SMTP server (github.com/emersion/go-smtp) on 127.0.0.1 that keeps what it
// receives, for tests that follow an appointment's email to the customer.
type mailbox struct {
	port int

	mu       sync.Mutex
	received []receivedMail
	changed  chan struct{} // closed and replaced whenever a mail arrives
	// refuse, if set, answers RCPT TO of an address with a temporary failure while it returns true.
	refuse func(to string) bool
}

// receivedMail is one email as the customer would read it.
type receivedMail struct {
	To        string
	From      string // the From header
	Subject   string
	MessageID string
	Language  string
	Text      string // the text/plain part, decoded
	At        time.Time
}

// linkPattern finds an Assist customer link in an email.
var linkPattern = regexp.MustCompile(`https?://[^\s"<>]+/c/[A-Za-z0-9._-]+`)

// Link is the customer link in the email, or "".
func (m receivedMail) Link() string { return linkPattern.FindString(m.Text) }

func startMailbox(t *testing.T) *mailbox {
	t.Helper()
	mb := &mailbox{changed: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &mailboxSession{mb: mb}, nil
	}))
	srv.Domain = "mail.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb.port = l.Addr().(*net.TCPAddr).Port
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return mb
}

// configure points an Assist node's email at the mailbox (plain SMTP on loopback).
func (mb *mailbox) configure(cfg *config.Config) {
	cfg.SMTPHost, cfg.SMTPPort, cfg.SMTPStartTLS = "127.0.0.1", mb.port, "none"
	cfg.EmailFrom = "Assist <no-reply@assist.example>"
}

func (mb *mailbox) setRefuse(f func(to string) bool) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.refuse = f
}

// all returns the mails received so far that match.
func (mb *mailbox) all(match func(receivedMail) bool) []receivedMail {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	var out []receivedMail
	for _, m := range mb.received {
		if match(m) {
			out = append(out, m)
		}
	}
	return out
}

// waitFor waits until a matching mail has arrived and returns the first.
func (mb *mailbox) waitFor(t *testing.T, what string, timeout time.Duration, match func(receivedMail) bool) receivedMail {
	t.Helper()
	deadline := time.After(timeout)
	for {
		mb.mu.Lock()
		changed := mb.changed
		mb.mu.Unlock()
		if got := mb.all(match); len(got) > 0 {
			return got[0]
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no email %s within %v", what, timeout)
		}
	}
}

func to(addr string) func(receivedMail) bool {
	return func(m receivedMail) bool { return m.To == addr }
}

func kindTo(kind, addr string) func(receivedMail) bool {
	return func(m receivedMail) bool { return m.To == addr && strings.Contains(m.MessageID, "."+kind+".") }
}

type mailboxSession struct {
	mb *mailbox
	to string
}

func (s *mailboxSession) Mail(string, *smtp.MailOptions) error { return nil }

func (s *mailboxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.mb.mu.Lock()
	refuse := s.mb.refuse
	s.mb.mu.Unlock()
	if refuse != nil && refuse(to) {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.to = to
	return nil
}

func (s *mailboxSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	m := receivedMail{To: s.to, From: msg.Header.Get("From"), Subject: subject, MessageID: msg.Header.Get("Message-Id"),
		Language: msg.Header.Get("Content-Language"), Text: plainText(msg), At: time.Now()}
	s.mb.mu.Lock()
	s.mb.received = append(s.mb.received, m)
	close(s.mb.changed)
	s.mb.changed = make(chan struct{})
	s.mb.mu.Unlock()
	return nil
}

func (s *mailboxSession) Reset()        { s.to = "" }
func (s *mailboxSession) Logout() error { return nil }

// plainText is the decoded text/plain part of a message, single-part or multipart/alternative.
func plainText(msg *mail.Message) string {
	mediaType, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if !strings.HasPrefix(mediaType, "multipart/") {
		b, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
		return string(b)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err != nil {
			return ""
		}
		if ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct == "text/plain" {
			b, _ := io.ReadAll(quotedprintable.NewReader(p))
			return string(b)
		}
	}
}

func testLog() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("ASSIST_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// startStoppableServer starts a node like startTestServer and also returns a stop that shuts
// it down now (for restarts on the same data directory); stopping twice is harmless.
func startStoppableServer(t *testing.T, cfg config.Config) (*testServer, func()) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := NewServer(ctx, cfg, testLog())
	if err != nil {
		cancel()
		t.Fatalf("NewServer: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("server did not shut down within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return &testServer{Server: srv, URL: srv.URL(), APIKey: testAPIKey}, stop
}
