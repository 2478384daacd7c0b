package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/media/mediatest"
	"github.com/assist-video/assist/signaling/wire"
)

// errSessionFull is a join the node refused because the session holds as many participants
// as it allows.
var errSessionFull = errors.New("the session is full")

// participant is one person in a session: a signaling socket and a Go Pion peer, wired the
// way the browser pages wire theirs.
type participant struct {
	log        *slog.Logger
	conn       *websocket.Conn
	wmu        sync.Mutex // one writer at a time on the socket
	peer       atomic.Pointer[mediatest.Peer]
	id         string
	specialist bool

	admitted  chan struct{} // closed when a customer is admitted
	done      chan struct{} // closed when the socket's reader stops
	admitOnce sync.Once
	closeOnce sync.Once
}

// join opens a signaling socket to base, joins with a link token, and builds the peer once
// welcomed. Specialists publish camera and microphone; customers only subscribe.
func join(ctx context.Context, base *url.URL, token, name string, video *mediatest.SyntheticVideo, specialist bool, log *slog.Logger) (*participant, error) {
	ws := *base
	ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[base.Scheme]
	ws.Path = strings.TrimRight(base.Path, "/") + "/v1/signal"
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, ws.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", ws.Redacted(), err)
	}
	p := &participant{
		log:        log.With("participant", name),
		conn:       conn,
		specialist: specialist,
		admitted:   make(chan struct{}),
		done:       make(chan struct{}),
	}
	if err := p.write(wire.TypeJoin, wire.Join{Token: token, Name: name}); err != nil {
		conn.Close()
		return nil, err
	}
	var welcome wire.Welcome
	if err := p.readWelcome(&welcome); err != nil {
		conn.Close()
		return nil, err
	}
	p.id = welcome.ParticipantID

	cfg := mediatest.Config{
		Name:           name,
		SyntheticVideo: video,
		NoVideo:        !specialist,
		NoAudio:        !specialist,
		Loopback:       isLoopback(base.Hostname()),
		ICEServers:     iceServers(welcome.ICEServers),
		OnDescription: func(d webrtc.SessionDescription) {
			p.send(wire.TypeDescription, wire.Description{Type: d.Type.String(), SDP: d.SDP})
		},
		OnCandidate: func(c webrtc.ICECandidateInit) {
			p.send(wire.TypeCandidate, wire.Candidate{Candidate: c.Candidate, SDPMid: c.SDPMid,
				SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment})
		},
	}
	peer, err := mediatest.NewPeer(cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	p.peer.Store(peer)
	go p.readLoop()
	return p, nil
}

// readWelcome reads until the welcome, failing on an error reply or after 10 s.
func (p *participant) readWelcome(out *wire.Welcome) error {
	_ = p.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer p.conn.SetReadDeadline(time.Time{})
	for {
		var env wire.Envelope
		if err := p.conn.ReadJSON(&env); err != nil {
			return fmt.Errorf("waiting for welcome: %w", err)
		}
		switch env.Type {
		case wire.TypeWelcome:
			return json.Unmarshal(env.Payload, out)
		case wire.TypeError, wire.TypeDenied, wire.TypeSessionEnded:
			err := fmt.Errorf("join refused: %s %s", env.Type, env.Payload)
			if strings.Contains(strings.ToLower(string(env.Payload)), "full") {
				err = fmt.Errorf("%w: %s %s", errSessionFull, env.Type, env.Payload)
			}
			return err
		}
	}
}

func (p *participant) write(typ wire.Type, payload any) error {
	frame, err := wire.Encode(typ, payload)
	if err != nil {
		return err
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return p.conn.WriteMessage(websocket.TextMessage, frame)
}

// send writes and logs a failure: the reader notices a dead socket and ends the participant.
func (p *participant) send(typ wire.Type, payload any) {
	if err := p.write(typ, payload); err != nil {
		p.log.Debug("send", "type", typ, "err", err)
	}
}

// readLoop hands SDP and candidates to the peer, admits waiting customers (specialist) and
// notices admission (customer). Gorilla answers the server's pings while it reads.
func (p *participant) readLoop() {
	defer close(p.done)
	admitted := map[string]bool{} // by the specialist, so each customer is admitted once
	for {
		var env wire.Envelope
		if err := p.conn.ReadJSON(&env); err != nil {
			return
		}
		peer := p.peer.Load()
		switch env.Type {
		case wire.TypeDescription:
			var d wire.Description
			if json.Unmarshal(env.Payload, &d) == nil {
				err := peer.HandleDescription(webrtc.SessionDescription{Type: webrtc.NewSDPType(d.Type), SDP: d.SDP})
				if err != nil && !errors.Is(err, mediatest.ErrClosed) {
					p.log.Warn("description", "err", err)
				}
			}
		case wire.TypeCandidate:
			var c wire.Candidate
			if json.Unmarshal(env.Payload, &c) == nil {
				_ = peer.HandleCandidate(webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid,
					SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment})
			}
		case wire.TypeQueue:
			var q wire.Queue
			if !p.specialist || json.Unmarshal(env.Payload, &q) != nil {
				continue
			}
			for _, w := range q.Waiting {
				if !admitted[w.ParticipantID] {
					admitted[w.ParticipantID] = true
					p.send(wire.TypeAdmit, wire.Admit{ParticipantID: w.ParticipantID})
				}
			}
		case wire.TypeAdmitted:
			p.admitOnce.Do(func() { close(p.admitted) })
		case wire.TypeError:
			p.log.Warn("error from the node", "payload", string(env.Payload))
		case wire.TypeDenied, wire.TypeSessionEnded:
			p.log.Info("left", "why", env.Type)
			return
		}
	}
}

// waitAdmitted waits until the specialist has admitted this customer.
func (p *participant) waitAdmitted(ctx context.Context) error {
	select {
	case <-p.admitted:
		return nil
	case <-p.done:
		return errors.New("socket closed before admission")
	case <-ctx.Done():
		return fmt.Errorf("waiting for admission: %w", context.Cause(ctx))
	}
}

func (p *participant) close() {
	p.closeOnce.Do(func() {
		p.peer.Load().Close()
		p.conn.Close()
		<-p.done
	})
}

func iceServers(in []wire.ICEServer) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(in))
	for _, s := range in {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}
