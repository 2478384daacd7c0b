package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/media/mediatest"
	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/config"
	"github.com/assist-video/assist/signaling/wire"
)

// natsCluster is three embedded NATS servers with JetStream, routed to each other on
// loopback: the cluster a production deployment runs, in-process.
type natsCluster struct {
	servers []*server.Server
	urls    []string
}

// freePort asks the kernel for a loopback port that is free now (cluster routes must be known
// before the servers start).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startNATSCluster(t *testing.T, n int) *natsCluster {
	t.Helper()
	routePorts := make([]int, n)
	var routes []string
	for i := range routePorts {
		routePorts[i] = freePort(t)
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i]))
	}
	c := &natsCluster{}
	for i := range n {
		ns, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("nats-%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			NoLog:      true,
			Cluster:    server.ClusterOpts{Name: "assist-test", Host: "127.0.0.1", Port: routePorts[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		t.Cleanup(ns.Shutdown)
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatalf("NATS server %d not ready", i+1)
		}
		c.servers = append(c.servers, ns)
		c.urls = append(c.urls, ns.ClientURL())
	}
	// JetStream is usable once the cluster has elected its meta leader: wait until a
	// replicated bucket can be made.
	conn, err := nats.Connect(strings.Join(c.urls, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	js, _ := jetstream.New(conn)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "cluster_ready", Replicas: n})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream cluster not ready: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return c
}

// clusterNode is an Assist node that the test can kill.
type clusterNode struct {
	*testServer
	stop func()
}

func startClusterNode(t *testing.T, nc *natsCluster, id string) *clusterNode {
	t.Helper()
	return startClusterNodeWith(t, nc, id, func(*config.Config) {})
}

// sees reports whether the node's registry view holds exactly these nodes.
func (n *clusterNode) sees(ids ...string) bool {
	c := n.cluster
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.live) != len(ids) {
		return false
	}
	for _, id := range ids {
		if _, ok := c.live[id]; !ok {
			return false
		}
	}
	return true
}

// eventually waits for cond with a deadline, failing the test with what.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clusterPeer is a callPeer that can fail to join (the cluster is recovering) and that
// remembers how its socket closed.
type clusterPeer struct {
	*callPeer
	closed chan error // receives the read error that ended the socket
}

// tryJoinCall joins through the real WebSocket of one node, like joinCall, but reports
// failure instead of failing the test.
func tryJoinCall(t *testing.T, ts *testServer, token, name string) (*clusterPeer, error) {
	t.Helper()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/signal"
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		return nil, err
	}
	cp := &clusterPeer{callPeer: &callPeer{t: t, conn: conn, events: make(chan wire.Envelope, 64)}, closed: make(chan error, 1)}
	cfg := mediatest.Config{Name: name, Loopback: true}
	cfg.OnDescription = func(d webrtc.SessionDescription) {
		cp.write(wire.TypeDescription, wire.Description{Type: d.Type.String(), SDP: d.SDP})
	}
	cfg.OnCandidate = func(c webrtc.ICECandidateInit) {
		cp.write(wire.TypeCandidate, wire.Candidate{Candidate: c.Candidate, SDPMid: c.SDPMid,
			SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment})
	}
	peer, err := mediatest.NewPeer(cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	cp.peer = peer
	go cp.readLoop()
	cp.write(wire.TypeJoin, wire.Join{Token: token, Name: name})
	timeout := time.After(10 * time.Second)
	for {
		select {
		case env, ok := <-cp.events:
			if !ok {
				peer.Close()
				return nil, fmt.Errorf("socket closed before welcome: %v", <-cp.closed)
			}
			switch env.Type {
			case wire.TypeWelcome:
				var w wire.Welcome
				_ = json.Unmarshal(env.Payload, &w)
				cp.id = w.ParticipantID
				t.Cleanup(func() { conn.Close(); peer.Close() })
				return cp, nil
			case wire.TypeError:
				conn.Close()
				peer.Close()
				return nil, fmt.Errorf("join refused: %s", env.Payload)
			}
		case <-timeout:
			conn.Close()
			peer.Close()
			return nil, errors.New("no welcome within 10s")
		}
	}
}

// joinCallEventually retries joining until the cluster lets the participant in.
func joinCallEventually(t *testing.T, ts *testServer, token, name string) *clusterPeer {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		cp, err := tryJoinCall(t, ts, token, name)
		if err == nil {
			return cp
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s could not join: %v", name, err)
		}
		t.Logf("%s joining again: %v", name, err)
		time.Sleep(500 * time.Millisecond)
	}
}

// readLoop is callPeer's, and keeps the error that ended the socket.
func (cp *clusterPeer) readLoop() {
	defer close(cp.events)
	for {
		var env wire.Envelope
		if err := cp.conn.ReadJSON(&env); err != nil {
			cp.closed <- err
			return
		}
		switch env.Type {
		case wire.TypeDescription:
			var d wire.Description
			_ = json.Unmarshal(env.Payload, &d)
			_ = cp.peer.HandleDescription(webrtc.SessionDescription{Type: webrtc.NewSDPType(d.Type), SDP: d.SDP})
		case wire.TypeCandidate:
			var c wire.Candidate
			_ = json.Unmarshal(env.Payload, &c)
			_ = cp.peer.HandleCandidate(webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid,
				SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment})
		default:
			cp.events <- env
		}
	}
}

// closeCode waits for the socket to close and returns its close code.
func (cp *clusterPeer) closeCode(t *testing.T) int {
	t.Helper()
	for {
		select {
		case _, ok := <-cp.events:
			if ok {
				continue
			}
			var ce *websocket.CloseError
			if err := <-cp.closed; errors.As(err, &ce) {
				return ce.Code
			} else {
				t.Fatalf("socket ended without a close frame: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("socket did not close within 30s")
		}
	}
}

// exchangeMedia starts both peers' media and waits until each receives the other's video and
// audio.
func exchangeMedia(t *testing.T, a, b *callPeer) {
	t.Helper()
	for _, p := range []*callPeer{a, b} {
		if err := p.peer.Start(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct{ who, from *callPeer }{{a, b}, {b, a}} {
		for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
			if err := c.who.peer.WaitReceivedFrom(ctx, c.from.id, kind, 50); err != nil {
				t.Fatalf("%s did not receive %s from %s: %v", c.who.id, kind, c.from.id, err)
			}
		}
	}
}

// sessionOn reads a session through one node's API, or reports that the node did not answer.
func sessionOn(ts *testServer, id string) (api.Session, bool) {
	req, _ := http.NewRequest("GET", ts.URL+"/v1/sessions/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+ts.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return api.Session{}, false
	}
	defer resp.Body.Close()
	var s api.Session
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&s) != nil {
		return api.Session{}, false
	}
	return s, true
}

func participantState(s api.Session, id string) string {
	for _, p := range s.Participants {
		if p.ID == id {
			return p.State
		}
	}
	return ""
}

func TestClusterOfThreeNodesActsAsOne(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three NATS servers and three Assist nodes")
	}
	nc := startNATSCluster(t, 3)
	nodes := map[string]*clusterNode{}
	for _, id := range []string{"a1", "a2", "a3"} {
		nodes[id] = startClusterNode(t, nc, id)
	}
	for id, n := range nodes {
		eventually(t, 20*time.Second, id+" sees all three nodes", func() bool { return n.sees("a1", "a2", "a3") })
	}

	s := nodes["a1"].createSession(t) // the API on one node

	// The customer's socket reaches a2: the session is placed there (all nodes idle; the
	// node that asks wins a tie). The specialist's reaches a3 and is relayed to a2.
	customer := joinCallEventually(t, nodes["a2"].testServer, linkToken(s.CustomerURL), "Ann")
	customer.expect(wire.TypeWaiting, nil)
	placed, _ := sessionOn(nodes["a1"].testServer, s.ID)
	if placed.MediaNode != "a2" {
		t.Fatalf("session placed on %q, want a2", placed.MediaNode)
	}
	specialist := joinCallEventually(t, nodes["a3"].testServer, linkToken(s.SpecialistURL), "Sam")

	t.Run("the waiting room and admission work across nodes", func(t *testing.T) {
		var q wire.Queue
		specialist.expect(wire.TypeQueue, &q)
		for len(q.Waiting) == 0 {
			specialist.expect(wire.TypeQueue, &q)
		}
		if q.Waiting[0].ParticipantID != customer.id {
			t.Fatalf("queue = %+v, want %s waiting", q, customer.id)
		}
		specialist.write(wire.TypeAdmit, wire.Admit{ParticipantID: customer.id})
		timeout := time.After(15 * time.Second)
		for admitted := false; !admitted; {
			select {
			case env := <-customer.events:
				admitted = env.Type == wire.TypeAdmitted
			case env := <-specialist.events:
				if env.Type == wire.TypeError {
					t.Fatalf("admit refused: %s", env.Payload)
				}
			case <-timeout:
				got, _ := sessionOn(nodes["a1"].testServer, s.ID)
				t.Fatalf("the customer was not admitted within 15s; session: %+v", got)
			}
		}
	})

	t.Run("participants on different nodes get each other's media through the session's node", func(t *testing.T) {
		exchangeMedia(t, customer.callPeer, specialist.callPeer)
		if got := nodes["a2"].sfu.Peers(); got != 2 {
			t.Errorf("the session's node carries %d media peers, want 2", got)
		}
		if got := nodes["a3"].sfu.Peers(); got != 0 {
			t.Errorf("the relaying node carries %d media peers, want 0", got)
		}
		onRoomNode, _ := sessionOn(nodes["a2"].testServer, s.ID)
		for _, p := range onRoomNode.Participants {
			if len(p.Tracks) == 0 || p.Tracks[0].PacketsForwarded == 0 {
				t.Errorf("%s: the session's node forwarded nothing: %+v", p.Role, p.Tracks)
			}
		}
	})

	t.Run("a relayed socket gets the session node's close code", func(t *testing.T) {
		// A second tab of the customer, on a3 (relayed to a2), takes the participant over;
		// then a third, on a2 directly, takes it from the relayed one: 4001 must come through.
		tab := joinCallEventually(t, nodes["a3"].testServer, linkToken(s.CustomerURL), "Ann")
		if code := customer.closeCode(t); code != closeReplaced {
			t.Fatalf("the replaced direct socket closed with %d, want %d", code, closeReplaced)
		}
		customer = joinCallEventually(t, nodes["a2"].testServer, linkToken(s.CustomerURL), "Ann")
		if code := tab.closeCode(t); code != closeReplaced {
			t.Fatalf("the replaced relayed socket closed with %d, want %d", code, closeReplaced)
		}
		// The closed relay's goroutines have exited; the specialist's relay has its two.
		eventually(t, 15*time.Second, "only the specialist's relay goroutines are left", func() bool { return relayGoroutines() == 2 })
	})

	// Kill one NATS server and the session's node.
	nc.servers[0].Shutdown()
	nodes["a2"].stop()

	t.Run("the relayed specialist is told the session's node went away", func(t *testing.T) {
		if code := specialist.closeCode(t); code != websocket.CloseServiceRestart && code != websocket.CloseTryAgainLater {
			t.Fatalf("relayed socket closed with %d, want 1012 or 1013", code)
		}
		eventually(t, 15*time.Second, "no relay goroutine is left", func() bool { return relayGoroutines() == 0 })
	})

	t.Run("the survivors keep the API and the state and take the session over", func(t *testing.T) {
		for _, id := range []string{"a1", "a3"} {
			eventually(t, 30*time.Second, id+" sees a2 gone", func() bool { return nodes[id].sees("a1", "a3") })
		}
		eventually(t, 45*time.Second, "the session is released and its participants reconnecting", func() bool {
			for _, id := range []string{"a1", "a3"} {
				got, ok := sessionOn(nodes[id].testServer, s.ID)
				if !ok || got.State != api.SessionActive || got.MediaNode != "" ||
					participantState(got, customer.id) != "reconnecting" || participantState(got, specialist.id) != "reconnecting" {
					return false
				}
			}
			return true
		})
	})

	t.Run("participants join again on surviving nodes and get media again", func(t *testing.T) {
		back := joinCallEventually(t, nodes["a1"].testServer, linkToken(s.CustomerURL), "Ann")
		if back.id != customer.id {
			t.Fatalf("the customer came back as %s, want %s", back.id, customer.id)
		}
		sam := joinCallEventually(t, nodes["a3"].testServer, linkToken(s.SpecialistURL), "Sam")
		if sam.id != specialist.id {
			t.Fatalf("the specialist came back as %s, want %s", sam.id, specialist.id)
		}
		got, _ := sessionOn(nodes["a3"].testServer, s.ID)
		if got.MediaNode != "a1" && got.MediaNode != "a3" {
			t.Fatalf("session placed on %q after a2 died", got.MediaNode)
		}
		exchangeMedia(t, back.callPeer, sam.callPeer)
		for _, p := range []*clusterPeer{back, sam} {
			if st := participantState(got, p.id); st != "in_call" {
				got, _ = sessionOn(nodes["a1"].testServer, s.ID)
				if st = participantState(got, p.id); st != "in_call" {
					t.Errorf("participant %s is %s after coming back", p.id, st)
				}
			}
		}
	})
}

func TestClusterTakesOverACrashedNode(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a node record to expire")
	}
	ts := newTestServer(t)
	node := &clusterNode{testServer: ts}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// A node that beat once and then crashed: its record stays until the registry's TTL, its
	// address refuses connections, and it held a session with a participant in the call.
	ghost := rooms.Node{ID: "ghost", URL: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), Boot: "g1"}
	if err := ts.cluster.nodes.Beat(ctx, ghost); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the node sees the ghost", func() bool { return node.sees("test", "ghost") })
	s := ts.createSession(t)
	if _, err := ts.rooms.Place(ctx, s.OrganizationID, s.ID, func(string) bool { return false },
		func() string { return "ghost" }); err != nil {
		t.Fatal(err)
	}
	_, held, err := ts.rooms.Join(ctx, s.OrganizationID, s.ID, rooms.JoinRequest{Role: rooms.RoleSpecialist,
		Key: "specialist:held", Name: "Held", Conn: "con_ghost", Node: "ghost"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a join for a session on an unreachable live node is told to reconnect", func(t *testing.T) {
		sock := ts.dial(t)
		sock.send(wire.TypeJoin, wire.Join{Token: linkToken(s.CustomerURL)})
		var werr wire.Error
		sock.expect(wire.TypeError, &werr)
		if werr.Code != wire.CodeInternal {
			t.Fatalf("error = %+v", werr)
		}
		_, err := sock.next()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseTryAgainLater {
			t.Fatalf("socket ended with %v, want close 1013", err)
		}
	})

	t.Run("when its record expires a survivor takes its sessions over", func(t *testing.T) {
		eventually(t, 3*rooms.DefaultNodeTTL, "the ghost's session is released and its participant reconnecting", func() bool {
			got, err := ts.rooms.Session(ctx, s.OrganizationID, s.ID)
			if err != nil || got.MediaNode != "" || got.InterruptedAt == nil {
				return false
			}
			p, _ := got.Participant(held.ID)
			return p.State == rooms.ParticipantReconnecting
		})
	})

	t.Run("the next join places the session on a live node", func(t *testing.T) {
		customer := joinCallEventually(t, ts, linkToken(s.CustomerURL), "Ann")
		customer.expect(wire.TypeWaiting, nil)
		if got := ts.getSession(t, s.ID); got.MediaNode != "test" {
			t.Fatalf("session placed on %q, want test", got.MediaNode)
		}
	})
}

func TestRelayHeaderIsTrustedOnlyWhenSignedByTheCluster(t *testing.T) {
	c := &cluster{self: rooms.Node{ID: "a1"}, secret: []byte("cluster secret")}
	other := &cluster{self: rooms.Node{ID: "a1"}, secret: []byte("another cluster")}
	now := time.Now()
	good := c.sign("203.0.113.7:5000", now)
	tampered := strings.Replace(good, "203.0.113.7", "198.51.100.1", 1)
	for _, tc := range []struct {
		name   string
		header string
		at     time.Time
		ok     bool
	}{
		{"a header signed by a node of the cluster is trusted", good, now, true},
		{"a header with another client address is not", tampered, now, false},
		{"a header signed with another secret is not", other.sign("203.0.113.7:5000", now), now, false},
		{"a header replayed later than a minute is not", good, now.Add(2 * time.Minute), false},
		{"garbage is not", "node=a1&addr=x", now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node, addr, ok := c.verify(tc.header, tc.at)
			if ok != tc.ok || ok && (node != "a1" || addr != "203.0.113.7:5000") {
				t.Fatalf("verify = %q %q %v, want ok=%v", node, addr, ok, tc.ok)
			}
		})
	}
}

// relayGoroutines counts the goroutines of relayed sockets in this process (all nodes).
func relayGoroutines() int {
	buf := make([]byte, 1<<22)
	stacks := string(buf[:runtime.Stack(buf, true)])
	return strings.Count(stacks, "signaling.(*relay).readLoop(") + strings.Count(stacks, "signaling.(*relay).writeLoop(")
}
