package signaling

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/config"
	"github.com/assist-video/assist/signaling/wire"
)

// externalNATS is a nats-server with JetStream that Assist reaches over TCP (the nats-url
// setting), on a fixed port and store directory so that it can be restarted in place.
type externalNATS struct {
	t    *testing.T
	opts server.Options
	ns   *server.Server
}

func startExternalNATS(t *testing.T) *externalNATS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	n := &externalNATS{t: t, opts: server.Options{ServerName: "external", Host: "127.0.0.1", Port: port,
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true}}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *externalNATS) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.opts.Port) }

func (n *externalNATS) start() {
	n.t.Helper()
	opts := n.opts
	ns, err := server.NewServer(&opts)
	if err != nil {
		n.t.Fatalf("nats-server: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("nats-server not ready within 10s")
	}
	n.ns = ns
}

func (n *externalNATS) stop() {
	if n.ns != nil {
		n.ns.Shutdown()
		n.ns.WaitForShutdown()
		n.ns = nil
	}
}

// status polls a route until it answers want, or fails the test.
func (ts *testServer) waitStatus(t *testing.T, path string, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(ts.URL + path)
		got := 0
		if err == nil {
			got = resp.StatusCode
			resp.Body.Close()
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %d (%v) after %v, want %d", path, got, err, within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestNATSRestartKeepsSessionsAndQueue(t *testing.T) {
	nats := startExternalNATS(t)
	cfg := config.Defaults()
	cfg.Addr, cfg.DataDir, cfg.NodeID = "127.0.0.1:0", t.TempDir(), "test"
	cfg.BootstrapAPIKey, cfg.BootstrapPassword = testAPIKey, testPassword
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.NATSURL = nats.url()
	ts := startTestServer(t, cfg)
	s := ts.createSession(t)

	ann := ts.dial(t)
	ann.send(wire.TypeJoin, wire.Join{Token: linkToken(s.CustomerURL), Name: "Ann"})
	var annWelcome wire.Welcome
	ann.expect(wire.TypeWelcome, &annWelcome)
	ann.expect(wire.TypeWaiting, nil)
	specialist := ts.joinCall(t, linkToken(s.SpecialistURL), "Sam")
	var q wire.Queue
	specialist.expect(wire.TypeQueue, &q)
	if len(q.Waiting) != 1 {
		t.Fatalf("queue before the restart = %+v", q)
	}

	// NATS goes away. While it is away Ann's socket drops: the node cannot record that yet
	// and must do it once NATS is back.
	nats.stop()
	ts.waitStatus(t, "/healthz", http.StatusServiceUnavailable, 10*time.Second)
	_ = ann.conn.Close()
	time.Sleep(2 * time.Second) // an outage of a few seconds
	nats.start()

	ts.waitStatus(t, "/healthz", http.StatusOK, 30*time.Second)
	ts.waitStatus(t, "/readyz", http.StatusOK, time.Second)
	ts.waitParticipantState(t, s.ID, annWelcome.ParticipantID, "reconnecting", 30*time.Second)
	if got := ts.getSession(t, s.ID); got.State != "waiting" || len(got.Participants) != 2 {
		t.Fatalf("session after the NATS restart = %+v", got)
	}

	t.Run("the queue is intact and a customer keeps her place", func(t *testing.T) {
		back := ts.joinCall(t, linkToken(s.CustomerURL), "Ann")
		var w wire.Waiting
		back.expect(wire.TypeWaiting, &w)
		if back.id != annWelcome.ParticipantID || w.Position != 1 {
			t.Fatalf("Ann came back as %s at %d, want %s at 1", back.id, w.Position, annWelcome.ParticipantID)
		}
		bobLink, _, err := ts.issuer.IssueLink(s.OrganizationID, s.ID, auth.RoleCustomer, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		bob := ts.joinCall(t, bobLink, "Bob")
		bob.expect(wire.TypeWaiting, &w)
		if w.Position != 2 {
			t.Fatalf("Bob is %d, want 2", w.Position)
		}

		// The specialist's socket lived through the restart: events made after it reach it.
		for {
			specialist.expect(wire.TypeQueue, &q)
			if len(q.Waiting) == 2 {
				break
			}
		}
		if q.Waiting[0].ParticipantID != annWelcome.ParticipantID || q.Waiting[1].ParticipantID != bob.id {
			t.Fatalf("queue after the restart = %+v", q)
		}
		specialist.write(wire.TypeAdmit, wire.Admit{ParticipantID: back.id})
		back.expect(wire.TypeAdmitted, nil)
		back.write(wire.TypeChat, wire.ChatSend{Text: "still here"})
		for {
			var env wire.Envelope
			select {
			case env = <-specialist.events:
			case <-time.After(10 * time.Second):
				t.Fatal("the chat sent after the restart did not reach the specialist")
			}
			var chat wire.Chat
			if env.Type == wire.TypeChat && json.Unmarshal(env.Payload, &chat) == nil && chat.Text == "still here" {
				break
			}
		}
	})
}
