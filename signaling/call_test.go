package signaling

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/media/mediatest"
	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/wire"
)

// callPeer is a Go participant that joins through the real WebSocket API and carries real
// VP8/Opus through the SFU, like the browser pages do.
type callPeer struct {
	t      *testing.T
	conn   *websocket.Conn
	wmu    sync.Mutex
	peer   *mediatest.Peer
	events chan wire.Envelope // everything but SDP and candidates
	id     string
}

func (ts *testServer) joinCall(t *testing.T, token, name string) *callPeer {
	t.Helper()
	return ts.joinCallWith(t, token, name, mediatest.Config{})
}

func (ts *testServer) joinCallWith(t *testing.T, token, name string, cfg mediatest.Config) *callPeer {
	t.Helper()
	return ts.joinCallAsWith(t, wire.Join{Token: token, Name: name}, cfg)
}

// joinCallAsWith joins with a whole join payload (a console token and its session, a language).
func (ts *testServer) joinCallAsWith(t *testing.T, join wire.Join, cfg mediatest.Config) *callPeer {
	t.Helper()
	sock := ts.dial(t)
	cp := &callPeer{t: t, conn: sock.conn, events: make(chan wire.Envelope, 64)}
	cfg.Name, cfg.Loopback = join.Name, true
	cfg.OnDescription = func(d webrtc.SessionDescription) {
		cp.write(wire.TypeDescription, wire.Description{Type: d.Type.String(), SDP: d.SDP})
	}
	cfg.OnCandidate = func(c webrtc.ICECandidateInit) {
		cp.write(wire.TypeCandidate, wire.Candidate{Candidate: c.Candidate, SDPMid: c.SDPMid,
			SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment})
	}
	peer, err := mediatest.NewPeer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cp.peer = peer
	t.Cleanup(peer.Close)
	go cp.readLoop()
	cp.write(wire.TypeJoin, join)
	var welcome wire.Welcome
	cp.expect(wire.TypeWelcome, &welcome)
	cp.id = welcome.ParticipantID
	return cp
}

func (cp *callPeer) write(typ wire.Type, payload any) {
	raw, _ := json.Marshal(payload)
	cp.wmu.Lock()
	defer cp.wmu.Unlock()
	_ = cp.conn.WriteJSON(wire.Envelope{Type: typ, Payload: raw})
}

func (cp *callPeer) readLoop() {
	defer close(cp.events)
	for {
		var env wire.Envelope
		if err := cp.conn.ReadJSON(&env); err != nil {
			return
		}
		switch env.Type {
		case wire.TypeDescription:
			var d wire.Description
			_ = json.Unmarshal(env.Payload, &d)
			if err := cp.peer.HandleDescription(webrtc.SessionDescription{Type: webrtc.NewSDPType(d.Type), SDP: d.SDP}); err != nil {
				cp.t.Logf("handle description: %v", err)
			}
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

func (cp *callPeer) expect(typ wire.Type, out any) {
	cp.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case env, ok := <-cp.events:
			if !ok {
				cp.t.Fatalf("socket closed while waiting for %s", typ)
			}
			if env.Type == typ {
				if out != nil {
					_ = json.Unmarshal(env.Payload, out)
				}
				return
			}
		case <-timeout:
			cp.t.Fatalf("no %s within 10s", typ)
		}
	}
}

func TestTwoPeersCallThroughTheSFU(t *testing.T) {
	ts := newTestServer(t)
	s := ts.createSession(t)

	customer := ts.joinCall(t, linkToken(s.CustomerURL), "Ann")
	customer.expect(wire.TypeWaiting, nil)
	specialist := ts.joinCall(t, linkToken(s.SpecialistURL), "Sam")
	if err := specialist.peer.Start(); err != nil {
		t.Fatal(err)
	}
	specialist.expect(wire.TypeQueue, nil)
	specialist.write(wire.TypeAdmit, wire.Admit{ParticipantID: customer.id})
	customer.expect(wire.TypeAdmitted, nil)
	if err := customer.peer.Start(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, c := range []struct {
		who, from *callPeer
	}{{customer, specialist}, {specialist, customer}} {
		for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
			if err := c.who.peer.WaitReceivedFrom(ctx, c.from.id, kind, 50); err != nil {
				t.Fatalf("%s did not receive %s from %s: %v", c.who.id, kind, c.from.id, err)
			}
		}
	}

	got := ts.getSession(t, s.ID)
	if got.State != api.SessionActive || len(got.Participants) != 2 {
		t.Fatalf("session = %+v", got)
	}
	for _, p := range got.Participants {
		kinds := map[string]bool{}
		for _, tr := range p.Tracks {
			if tr.PacketsReceived == 0 || tr.BytesReceived == 0 || tr.PacketsForwarded == 0 || tr.BytesForwarded == 0 {
				t.Errorf("%s track %s has empty counters: %+v", p.Role, tr.Kind, tr)
			}
			kinds[tr.Kind] = true
		}
		if !kinds["audio"] || !kinds["video"] {
			t.Errorf("%s publishes %v, want audio and video", p.Role, kinds)
		}
	}

	t.Run("the specialist ends the call for both", func(t *testing.T) {
		specialist.write(wire.TypeEnd, wire.Empty{})
		customer.expect(wire.TypeSessionEnded, nil)
		if got := ts.getSession(t, s.ID); got.State != api.SessionEnded {
			t.Fatalf("state = %s", got.State)
		}
	})
}
