package turnserver

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"go.uber.org/goleak"
)

var testSecret = []byte("test-secret-0123456789abcdef")

// noLeaks fails the test if goroutines outlive it. Call it first, so that its cleanup runs
// after every other cleanup (servers, clients, peers) has closed.
func noLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// liveSessions is the SessionActive hook of the tests: the sessions signaling would call live.
type liveSessions struct {
	mu  sync.Mutex
	ids map[string]bool
}

func newLiveSessions(ids ...string) *liveSessions {
	l := &liveSessions{ids: make(map[string]bool)}
	for _, id := range ids {
		l.ids[id] = true
	}
	return l
}

func (l *liveSessions) active(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ids[id]
}

func (l *liveSessions) begin(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ids[id] = true
}

func (l *liveSessions) end(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.ids, id)
}

// clock is the server's Now in tests, so expiry is tested without waiting for it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer collects a test server's logs, to assert on and to print when the test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testServer struct {
	*Server
	live  *liveSessions
	clock *clock
	logs  *logBuffer
}

// startServer starts a server on 127.0.0.1 with UDP and TCP listeners on free ports, loopback
// peers allowed, and session "s1" live; adjust changes the config before Start.
func startServer(t *testing.T, adjust func(*Config)) *testServer {
	t.Helper()
	ts := &testServer{
		live:  newLiveSessions("s1"),
		clock: &clock{now: time.Now()},
		logs:  &logBuffer{},
	}
	cfg := Config{
		Secret:             testSecret,
		PublicIP:           "127.0.0.1",
		ListenUDP:          "127.0.0.1:0",
		ListenTCP:          "127.0.0.1:0",
		SessionActive:      ts.live.active,
		AllowLoopbackPeers: true,
		Logger:             slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:                ts.clock.Now,
	}
	if adjust != nil {
		adjust(&cfg)
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	ts.Server = s
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("server logs:\n%s", ts.logs)
		}
	})
	return ts
}

// credentials issues credentials for a session by the server's clock.
func (ts *testServer) credentials(sessionID string) Credentials {
	return IssueCredentials(testSecret, sessionID, time.Hour, ts.clock.Now())
}

// waitLog waits until the server has logged something containing want.
func (ts *testServer) waitLog(t *testing.T, want string) {
	t.Helper()
	waitFor(t, 5*time.Second, "log line "+want, func() bool { return strings.Contains(ts.logs.String(), want) })
}

// waitFor checks cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

var quietPion = logging.NewDefaultLoggerFactory() // level from PION_LOG_*, default Error only

// dialTURN connects a pion/turn client to the server over transport ("udp", "tcp" or "tls")
// with the given credentials.
func dialTURN(t *testing.T, ts *testServer, transport string, creds Credentials, roots *x509.CertPool) *turn.Client {
	t.Helper()
	var conn net.PacketConn
	var server net.Addr
	switch transport {
	case "udp":
		server = ts.Addrs().UDP
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = pc
	case "tcp":
		server = ts.Addrs().TCP
		c, err := net.DialTimeout("tcp", server.String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(c)
	case "tls":
		server = ts.Addrs().TLS
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{RootCAs: roots}}
		c, err := d.Dial("tcp", server.String())
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(c)
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server.String(),
		TURNServerAddr: server.String(),
		Conn:           conn,
		Username:       creds.Username,
		Password:       creds.Password,
		LoggerFactory:  quietPion,
	})
	if err != nil {
		_ = conn.Close()
		t.Fatal(err)
	}
	if err := client.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		_ = conn.Close()
	})
	return client
}

// allocate makes a relay and closes it (deallocating) when the test ends.
func allocate(t *testing.T, client *turn.Client) net.PacketConn {
	t.Helper()
	relay, err := client.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	return relay
}

// turnCode is the TURN error code in err, or 0.
func turnCode(err error) int {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return int(te.ErrorCodeAttr.Code)
	}
	return 0
}

// startEcho starts a UDP peer on 127.0.0.1 that sends every datagram back where it came from.
func startEcho(t *testing.T) net.Addr {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if _, err := pc.WriteTo(buf[:n], from); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = pc.Close()
		<-done
	})
	return pc.LocalAddr()
}

// roundTrip sends msg from the relay to peer and expects the peer's echo back through it.
func roundTrip(t *testing.T, relay net.PacketConn, peer net.Addr, msg string) {
	t.Helper()
	if _, err := relay.WriteTo([]byte(msg), peer); err != nil {
		t.Fatalf("WriteTo %v through the relay: %v", peer, err)
	}
	if err := relay.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, from, err := relay.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no echo through the relay: %v", err)
	}
	if got := string(buf[:n]); got != msg || from.String() != peer.String() {
		t.Fatalf("got %q from %v, want %q from %v", got, from, msg, peer)
	}
}

// selfSigned makes a certificate for 127.0.0.1 and localhost, and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "assist turn test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}
