package browsertest_test

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// This file is a stand-in for the signaling server and the SFU, just enough
// to drive the pages through design.md's message flow: it answers join with
// welcome, lets the test send any server message, and runs a Pion peer (the
// impolite side) that echoes the browser's own camera back to it, so the
// page really decodes video.

type envelope struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

type wireCandidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdp_mid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdp_mline_index,omitempty"`
	UsernameFragment *string `json:"username_fragment,omitempty"`
}

type fakeSFU struct {
	t    *testing.T
	role string // "customer" or "specialist": the role welcome reports

	received chan envelope // every message from the browser except description/candidate
	conns    chan *fakeConn
}

func newFakeSFU(t *testing.T, role string) *fakeSFU {
	return &fakeSFU{t: t, role: role, received: make(chan envelope, 64), conns: make(chan *fakeConn, 8)}
}

type fakeConn struct {
	t       *testing.T
	ws      *websocket.Conn
	writeMu sync.Mutex
	pcMu    sync.Mutex
	pc      *webrtc.PeerConnection
	negMu   sync.Mutex  // one negotiation step at a time (an impolite peer's "makingOffer")
	offers  chan string // SDP of offers the browser sent
}

// peer returns the connection's Pion peer, creating it on first use.
func (c *fakeConn) peer() (*webrtc.PeerConnection, error) {
	c.pcMu.Lock()
	defer c.pcMu.Unlock()
	if c.pc == nil {
		if err := c.newPeer(); err != nil {
			return nil, err
		}
	}
	return c.pc, nil
}

// offerNow makes the SFU send an offer of its own right away, with tracks of
// "another participant" that send nothing, to collide with the browser's.
func (c *fakeConn) offerNow(kinds ...string) {
	pc, err := c.peer()
	if err != nil {
		c.t.Errorf("fake sfu: %v", err)
		return
	}
	for _, kind := range kinds {
		mime := webrtc.MimeTypeVP8
		if kind == "audio" {
			mime = webrtc.MimeTypeOpus
		}
		track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: mime}, kind, "p-other")
		if err == nil {
			_, err = pc.AddTrack(track) // → negotiationneeded → offer
		}
		if err != nil {
			c.t.Errorf("fake sfu: %v", err)
		}
	}
}

func (c *fakeConn) send(typ string, payload any) {
	data, err := json.Marshal(payload)
	if err != nil {
		c.t.Errorf("fake sfu: %v", err)
		return
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.ws.WriteJSON(envelope{Type: typ, Payload: data}); err != nil {
		c.t.Logf("fake sfu: writing %s: %v", typ, err)
	}
}

func (c *fakeConn) close() {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	_ = c.ws.Close()
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (f *fakeSFU) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		f.t.Logf("fake sfu: upgrade: %v", err)
		return
	}
	c := &fakeConn{t: f.t, ws: ws, offers: make(chan string, 16)}
	defer func() {
		c.pcMu.Lock()
		if c.pc != nil {
			_ = c.pc.Close()
		}
		c.pcMu.Unlock()
		_ = ws.Close()
	}()
	for {
		var m envelope
		if err := ws.ReadJSON(&m); err != nil {
			return
		}
		switch m.Type {
		case "join":
			c.send("welcome", map[string]any{
				"participant_id": "p-" + f.role,
				"session_id":     "s-1",
				"role":           f.role,
				"session_state":  "active",
				"ice_servers":    []any{},
			})
			if f.role == "customer" {
				c.send("waiting", map[string]any{"position": 1})
			}
			f.conns <- c
		case "description":
			c.onDescription(m.Payload)
			continue
		case "candidate":
			var wc wireCandidate
			if err := json.Unmarshal(m.Payload, &wc); err != nil {
				f.t.Errorf("fake sfu: bad candidate %s: %v", m.Payload, err)
				continue
			}
			if pc, err := c.peer(); err == nil {
				if err := pc.AddICECandidate(webrtc.ICECandidateInit{
					Candidate: wc.Candidate, SDPMid: wc.SDPMid, SDPMLineIndex: wc.SDPMLineIndex, UsernameFragment: wc.UsernameFragment,
				}); err != nil {
					f.t.Logf("fake sfu: adding a candidate: %v", err)
				}
			}
			continue
		}
		f.received <- m
	}
}

// next returns the next non-media message from the browser.
func (f *fakeSFU) next(t *testing.T, timeout time.Duration) envelope {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-f.received:
			// The customer page reports its camera's capabilities on its own
			// once in the call (an in-session tool); these tests are about the
			// call, so they skip it.
			if m.Type == "camera_capabilities" {
				continue
			}
			return m
		case <-deadline:
			t.Fatalf("fake sfu: no message from the browser within %v", timeout)
			return envelope{}
		}
	}
}

func (f *fakeSFU) conn(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case c := <-f.conns:
		return c
	case <-time.After(15 * time.Second):
		t.Fatal("fake sfu: the page did not join within 15s")
		return nil
	}
}

func (c *fakeConn) onDescription(raw json.RawMessage) {
	var d struct {
		Type string `json:"type"`
		SDP  string `json:"sdp"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		c.t.Errorf("fake sfu: bad description: %v", err)
		return
	}
	pc, err := c.peer()
	if err != nil {
		c.t.Errorf("fake sfu: %v", err)
		return
	}
	c.negMu.Lock()
	defer c.negMu.Unlock()
	switch d.Type {
	case "offer":
		c.offers <- d.SDP
		if pc.SignalingState() != webrtc.SignalingStateStable {
			return // impolite: our own offer wins a collision
		}
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: d.SDP}); err != nil {
			c.t.Errorf("fake sfu: remote offer: %v", err)
			return
		}
		answer, err := pc.CreateAnswer(nil)
		if err == nil {
			err = pc.SetLocalDescription(answer)
		}
		if err != nil {
			c.t.Errorf("fake sfu: answer: %v", err)
			return
		}
		c.send("description", map[string]string{"type": "answer", "sdp": pc.LocalDescription().SDP})
	case "answer":
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: d.SDP}); err != nil {
			c.t.Errorf("fake sfu: remote answer: %v", err)
		}
	default:
		c.t.Errorf("fake sfu: a description of type %q", d.Type)
	}
}

func (c *fakeConn) newPeer() error {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return err
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	c.pc = pc
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil {
			return
		}
		init := cand.ToJSON()
		c.send("candidate", wireCandidate{
			Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex, UsernameFragment: init.UsernameFragment,
		})
	})
	pc.OnNegotiationNeeded(func() {
		c.negMu.Lock()
		defer c.negMu.Unlock()
		if pc.SignalingState() != webrtc.SignalingStateStable {
			return // fires again once stable
		}
		offer, err := pc.CreateOffer(nil)
		if err == nil {
			err = pc.SetLocalDescription(offer)
		}
		if err != nil {
			c.t.Logf("fake sfu: offer: %v", err)
			return
		}
		c.send("description", map[string]string{"type": "offer", "sdp": pc.LocalDescription().SDP})
	})
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if remote.Kind() != webrtc.RTPCodecTypeVideo {
			for {
				if _, _, err := remote.ReadRTP(); err != nil {
					return
				}
			}
		}
		// Echo the browser's camera back as another participant's stream.
		local, err := webrtc.NewTrackLocalStaticRTP(remote.Codec().RTPCodecCapability, "video", "p-echo")
		if err != nil {
			c.t.Errorf("fake sfu: %v", err)
			return
		}
		if _, err := pc.AddTrack(local); err != nil { // → negotiationneeded → our offer
			c.t.Errorf("fake sfu: %v", err)
			return
		}
		go func() { // keyframes for the late-starting echo
			for range time.Tick(500 * time.Millisecond) {
				if err := pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(remote.SSRC())}}); err != nil {
					return
				}
			}
		}()
		for {
			pkt, _, err := remote.ReadRTP()
			if err != nil {
				return
			}
			if err := local.WriteRTP(pkt); err != nil {
				return
			}
		}
	})
	return nil
}
