package client_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/assist-video/assist/signaling"
	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/client"
	"github.com/assist-video/assist/signaling/config"
	"github.com/assist-video/assist/signaling/wire"
)

const (
	testAPIKey   = "ak_client_test_key"
	testEmail    = "specialist@example.com"
	testPassword = "correct horse battery"
)

// node is a whole Assist node in-process (embedded NATS and S3, real HTTP on 127.0.0.1:0),
// started the way cmd/assist starts one.
type node struct {
	URL    string
	APIKey string
}

func startNode(t *testing.T) *node {
	t.Helper()
	cfg := config.Defaults()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.NodeID = "client-test"
	cfg.BootstrapAPIKey = testAPIKey
	cfg.BootstrapEmail = testEmail
	cfg.BootstrapPassword = testPassword
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.WebhookAllowPrivate = true // the test's webhook receiver listens on 127.0.0.1
	cfg.LogLevel = "warn"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	level := slog.LevelWarn
	if os.Getenv("ASSIST_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := signaling.NewServer(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("NewServer: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
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
	return &node{URL: srv.URL(), APIKey: testAPIKey}
}

// headerRecorder is a transport that remembers the headers of the requests it sends.
type headerRecorder struct {
	mu   sync.Mutex
	seen []http.Header
}

func (h *headerRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.seen = append(h.seen, r.Header.Clone())
	h.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (h *headerRecorder) last() http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen[len(h.seen)-1]
}

func newClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// linkToken is the JWT at the end of a session link.
func linkToken(link string) string { return link[strings.LastIndex(link, "/")+1:] }

// socket is a raw signaling client, enough to put people in a call.
type socket struct {
	t    *testing.T
	conn *websocket.Conn
}

func dial(t *testing.T, base string) *socket {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/v1/signal", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &socket{t: t, conn: conn}
}

func (s *socket) send(typ wire.Type, payload any) {
	s.t.Helper()
	raw, _ := json.Marshal(payload)
	if err := s.conn.WriteJSON(wire.Envelope{Type: typ, Payload: raw}); err != nil {
		s.t.Fatalf("send %s: %v", typ, err)
	}
}

func (s *socket) expect(typ wire.Type, out any) {
	s.t.Helper()
	for {
		_ = s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var env wire.Envelope
		if err := s.conn.ReadJSON(&env); err != nil {
			s.t.Fatalf("waiting for %s: %v", typ, err)
		}
		if env.Type == typ {
			if out != nil {
				if err := json.Unmarshal(env.Payload, out); err != nil {
					s.t.Fatalf("decode %s: %v", typ, err)
				}
			}
			return
		}
	}
}

// startCall puts a customer and a specialist in a session's call, on raw sockets.
func startCall(t *testing.T, base string, sess api.Session) {
	t.Helper()
	customer := dial(t, base)
	customer.send(wire.TypeJoin, wire.Join{Token: linkToken(sess.CustomerURL), Name: "Ann"})
	var w wire.Welcome
	customer.expect(wire.TypeWelcome, &w)
	customerID := w.ParticipantID
	specialist := dial(t, base)
	specialist.send(wire.TypeJoin, wire.Join{Token: linkToken(sess.SpecialistURL), Name: "Sam"})
	specialist.expect(wire.TypeWelcome, &w)
	specialist.send(wire.TypeAdmit, wire.Admit{ParticipantID: customerID})
	customer.expect(wire.TypeAdmitted, nil)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
