package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/assist-video/assist/rooms/bus"
)

// ---- NATS ----

func openBus(t *testing.T, dir string) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{StoreDir: dir, Name: "notify-test", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testLogger logs to t until the test ends, then drops lines (Run may log while it stops).
func testLogger(t *testing.T) *slog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testLogWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// eventually waits for cond, checking every 20 ms, and fails the test at the deadline.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// ---- TLS: a test CA and a certificate for 127.0.0.1 signed by it ----

type testPKI struct {
	roots  *x509.CertPool // trusts the CA
	server *tls.Config    // serves the leaf
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Assist test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "smtp.test"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{
		roots: pool,
		server: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}},
			MinVersion:   tls.VersionTLS12,
		},
	}
}

// ---- SMTP: a real go-smtp server that keeps what it receives ----

const (
	smtpUser     = "assist"
	smtpPassword = "s3cret-pass"
)

type receivedMail struct {
	From     string
	To       []string
	Raw      []byte
	Msg      *mail.Message // parsed headers; body unread
	AuthUser string        // who authenticated, "" if nobody
	TLS      bool          // whether the session was under TLS when the mail arrived
}

type smtpServer struct {
	host string
	port int

	mu       sync.Mutex
	received []receivedMail
	arrived  chan receivedMail
	// onData, if set, runs when DATA starts, with the 1-based number of this message; it may
	// block to hold the sender mid-send.
	onData func(n int)
	// reject, if set, is returned for RCPT TO of that address.
	reject map[string]error
	datas  int
}

// startSMTP starts a server on 127.0.0.1 that offers STARTTLS with tls (nil: no STARTTLS) and
// AUTH PLAIN only under TLS, and refuses mail from sessions that did not authenticate.
func startSMTP(t *testing.T, tlsConfig *tls.Config) *smtpServer {
	t.Helper()
	s := &smtpServer{arrived: make(chan receivedMail, 100), reject: map[string]error{}}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{srv: s, conn: c}, nil
	}))
	srv.Domain = "smtp.test"
	srv.TLSConfig = tlsConfig
	srv.AllowInsecureAuth = false
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.host = "127.0.0.1"
	s.port = l.Addr().(*net.TCPAddr).Port
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *smtpServer) config(pki testPKI) SMTPConfig {
	return SMTPConfig{
		Host: s.host, Port: s.port, Username: smtpUser, Password: smtpPassword,
		From: "Example Clinic <no-reply@clinic.example>", StartTLS: StartTLSRequire,
		TLSConfig: &tls.Config{RootCAs: pki.roots, MinVersion: tls.VersionTLS12}, HelloName: "assist.test",
	}
}

// setOnData sets onData; see the field.
func (s *smtpServer) setOnData(f func(n int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onData = f
}

// setReject makes the server refuse RCPT TO addr with err.
func (s *smtpServer) setReject(addr string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject[addr] = err
}

func (s *smtpServer) all() []receivedMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]receivedMail(nil), s.received...)
}

type smtpSession struct {
	srv  *smtpServer
	conn *smtp.Conn
	user string
	from string
	to   []string
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != smtpUser || password != smtpPassword {
			return smtp.ErrAuthFailed
		}
		s.user = username
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.srv.mu.Lock()
	err := s.srv.reject[to]
	s.srv.mu.Unlock()
	if err != nil {
		return err
	}
	s.to = append(s.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	s.srv.mu.Lock()
	s.srv.datas++
	n, onData := s.srv.datas, s.srv.onData
	s.srv.mu.Unlock()
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if onData != nil {
		onData(n)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		return errors.New("unparsable message: " + err.Error())
	}
	_, isTLS := s.conn.TLSConnectionState()
	m := receivedMail{From: s.from, To: s.to, Raw: raw, Msg: msg, AuthUser: s.user, TLS: isTLS}
	s.srv.mu.Lock()
	s.srv.received = append(s.srv.received, m)
	s.srv.mu.Unlock()
	s.srv.arrived <- m
	return nil
}

func (s *smtpSession) Reset()        { s.from, s.to = "", nil }
func (s *smtpSession) Logout() error { return nil }

// nextMail waits for the next message the server accepts.
func (s *smtpServer) nextMail(t *testing.T) receivedMail {
	t.Helper()
	select {
	case m := <-s.arrived:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no mail arrived within 10s")
		return receivedMail{}
	}
}

// ---- messages ----

var testStart = time.Date(2026, 3, 2, 13, 30, 0, 0, time.UTC) // a Monday; 14:30 in Paris

func testMessage(id string, ch Channel, kind Kind, lang string) Message {
	to := "ann@example.org"
	if ch == ChannelSMS {
		to = "+33612345678"
	}
	return Message{
		ID: id, OrgID: "org_test", AppointmentID: "apt_1", Channel: ch, Kind: kind, To: to, Language: lang,
		Data: TemplateData{
			CustomerName: "Ann Martin", OrganizationName: "Example Clinic",
			Link:  "https://assist.example/c/eyJhbGciOiJIUzI1NiJ9.abc?x=1&y=2",
			Start: testStart, End: testStart.Add(30 * time.Minute), TimeZone: "Europe/Paris",
		},
	}
}
