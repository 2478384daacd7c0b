package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/config"
	"github.com/assist-video/assist/signaling/wire"
)

const (
	testAPIKey   = "ak_test_key_for_the_suite"
	testEmail    = "specialist@example.com"
	testPassword = "correct horse battery"
)

// testServer is a whole Assist node in-process: embedded NATS, embedded S3, SFU, real HTTP on
// 127.0.0.1 with a random port.
type testServer struct {
	*Server
	URL    string
	APIKey string
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	return startTestServer(t, testConfig(t))
}

// testConfig is the suite's configuration: everything embedded, data in a temporary directory.
func testConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Defaults()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.NodeID = "test"
	cfg.BootstrapAPIKey = testAPIKey
	cfg.BootstrapPassword = testPassword
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.WebhookAllowPrivate = true // receivers in tests listen on 127.0.0.1
	return cfg
}

func startTestServer(t *testing.T, cfg config.Config) *testServer {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	level := slog.LevelWarn
	if os.Getenv("ASSIST_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := NewServer(ctx, cfg, log)
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
	return &testServer{Server: srv, URL: srv.URL(), APIKey: testAPIKey}
}

// do sends an API request with the suite's API key (or the given bearer) and decodes the reply.
func (ts *testServer) do(t *testing.T, method, path, bearer string, body any, out any) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, ts.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp
}

func (ts *testServer) createSession(t *testing.T) api.Session {
	t.Helper()
	var s api.Session
	resp := ts.do(t, "POST", "/v1/sessions", ts.APIKey, nil, &s)
	if resp.StatusCode != http.StatusCreated || s.ID == "" || s.CustomerURL == "" || s.SpecialistURL == "" {
		t.Fatalf("create session: %d %+v", resp.StatusCode, s)
	}
	return s
}

func (ts *testServer) getSession(t *testing.T, id string) api.Session {
	t.Helper()
	var s api.Session
	if resp := ts.do(t, "GET", "/v1/sessions/"+id, ts.APIKey, nil, &s); resp.StatusCode != http.StatusOK {
		t.Fatalf("get session: %d", resp.StatusCode)
	}
	return s
}

// linkToken is the JWT at the end of a session link.
func linkToken(link string) string { return link[strings.LastIndex(link, "/")+1:] }

// testSocket is a raw signaling client.
type testSocket struct {
	t    *testing.T
	conn *websocket.Conn
}

func (ts *testServer) dial(t *testing.T) *testSocket {
	t.Helper()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/signal"
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &testSocket{t: t, conn: conn}
}

func (s *testSocket) send(typ wire.Type, payload any) {
	s.t.Helper()
	raw, _ := json.Marshal(payload)
	if err := s.conn.WriteJSON(wire.Envelope{Type: typ, Payload: raw}); err != nil {
		s.t.Fatalf("send %s: %v", typ, err)
	}
}

// next reads the next message, failing the test after a deadline.
func (s *testSocket) next() (wire.Envelope, error) {
	_ = s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var env wire.Envelope
	err := s.conn.ReadJSON(&env)
	return env, err
}

// expect reads until a message of type typ arrives and decodes it into out.
func (s *testSocket) expect(typ wire.Type, out any) {
	s.t.Helper()
	for {
		env, err := s.next()
		if err != nil {
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
