package signaling

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/media/mediatest"
	"github.com/assist-video/assist/signaling/config"
	"github.com/assist-video/assist/signaling/wire"
)

func newTURNTestServer(t *testing.T) *testServer {
	t.Helper()
	cfg := config.Defaults()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.BootstrapAPIKey = testAPIKey
	cfg.BootstrapPassword = testPassword
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.TURNUDP = "127.0.0.1:0"
	cfg.TURNTCP = "127.0.0.1:0"
	cfg.TURNAllowLoopback = true // the SFU is on 127.0.0.1 in tests
	return startTestServer(t, cfg)
}

func toPion(servers []wire.ICEServer) []webrtc.ICEServer {
	var out []webrtc.ICEServer
	for _, s := range servers {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// TestCallThroughTURNOnly is a call between two participants whose networks allow only relayed
// media: every candidate they use is a relay on the embedded TURN server.
func TestCallThroughTURNOnly(t *testing.T) {
	ts := newTURNTestServer(t)
	s := ts.createSession(t)

	// The welcome carries per-session TURN credentials (checked below); the peers need them
	// before they join, so take the same ones the server hands out.
	iceServers := ts.iceServersFor(s.OrganizationID, s.ID)
	welcome := wire.Welcome{ICEServers: iceServers}
	if len(welcome.ICEServers) != 1 || welcome.ICEServers[0].Username == "" || !strings.HasPrefix(welcome.ICEServers[0].URLs[0], "turn:") {
		t.Fatalf("ice servers = %+v", welcome.ICEServers)
	}
	if !strings.Contains(welcome.ICEServers[0].Username, s.ID) {
		t.Fatalf("the credential is not scoped to the session: %q", welcome.ICEServers[0].Username)
	}
	servers := toPion(welcome.ICEServers)

	customer := ts.joinCallWith(t, linkToken(s.CustomerURL), "Ann", mediatest.Config{RelayOnly: true, ICEServers: servers})
	customer.expect(wire.TypeWaiting, nil)
	// What a joining browser is handed: the same TURN server, a credential for its session.
	other := ts.createSession(t)
	probe := ts.dial(t)
	probe.send(wire.TypeJoin, wire.Join{Token: linkToken(other.SpecialistURL)})
	var sent wire.Welcome
	probe.expect(wire.TypeWelcome, &sent)
	if len(sent.ICEServers) != 1 || !strings.HasSuffix(sent.ICEServers[0].Username, "."+other.ID) ||
		sent.ICEServers[0].URLs[0] != servers[0].URLs[0] || sent.ICEServers[0].Credential == "" {
		t.Fatalf("welcome ice servers = %+v", sent.ICEServers)
	}
	specialist := ts.joinCallWith(t, linkToken(s.SpecialistURL), "Sam", mediatest.Config{RelayOnly: true, ICEServers: servers})
	if err := specialist.peer.Start(); err != nil {
		t.Fatal(err)
	}
	specialist.write(wire.TypeAdmit, wire.Admit{ParticipantID: customer.id})
	customer.expect(wire.TypeAdmitted, nil)
	if err := customer.peer.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := customer.peer.WaitReceivedFrom(ctx, specialist.id, webrtc.RTPCodecTypeVideo, 30); err != nil {
		t.Fatalf("customer over TURN: %v", err)
	}
	if err := specialist.peer.WaitReceivedFrom(ctx, customer.id, webrtc.RTPCodecTypeVideo, 30); err != nil {
		t.Fatalf("specialist over TURN: %v", err)
	}
	if ts.turn.Allocations() == 0 {
		t.Fatal("media flowed but TURN holds no allocation")
	}

	t.Run("credentials of an ended session are refused", func(t *testing.T) {
		specialist.write(wire.TypeEnd, wire.Empty{})
		customer.expect(wire.TypeSessionEnded, nil)
		addr := ts.turn.Addrs().UDP.String()
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
			Username: welcome.ICEServers[0].Username, Password: welcome.ICEServers[0].Credential, Realm: "assist"})
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		if err := client.Listen(); err != nil {
			t.Fatal(err)
		}
		if relay, err := client.Allocate(); err == nil {
			relay.Close()
			t.Fatal("an ended session's credential got a relay")
		}
	})
}

// TestSetupTestWithoutASessionGetsItsOwnShortRelay: the standalone setup page has no session,
// yet it gets a TURN credential of its own scope, accepted while it lasts and never for a scope
// the server did not hand out.
func TestSetupTestWithoutASessionGetsItsOwnShortRelay(t *testing.T) {
	ts := newTURNTestServer(t)
	c := ts.dialEcho(t)
	c.send(wire.TypeEchoStart, wire.EchoStart{Seconds: 4})
	env := c.next(10 * time.Second)
	var ready wire.EchoReady
	if env.Type != wire.TypeEchoReady || json.Unmarshal(env.Payload, &ready) != nil {
		t.Fatalf("got %s %s, want echo_ready", env.Type, env.Payload)
	}
	var scope string
	for _, s := range ready.ICEServers {
		if s.Username != "" {
			_, scope, _ = strings.Cut(s.Username, ":")
		}
	}
	if !strings.HasPrefix(scope, echoRelayPrefix) {
		t.Fatalf("echo_ready ICE servers %+v: want a TURN credential scoped echo.<id>", ready.ICEServers)
	}
	if !ts.turnSessionActive(scope) {
		t.Fatal("the relay refuses the scope it just handed out")
	}
	if ts.turnSessionActive(echoRelayPrefix + "made-up") {
		t.Fatal("the relay accepts an echo scope nobody was given")
	}
	ts.echoRelays.Store(scope, time.Now().Add(-time.Second)) // as if its time were up
	if ts.turnSessionActive(scope) {
		t.Fatal("the relay accepts an expired echo scope")
	}
}
