package signaling

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/wire"
)

// Socket timing and limits.
const (
	defaultJoinTimeout = 10 * time.Second
	pingInterval       = 20 * time.Second
	pongTimeout        = 2*pingInterval + 5*time.Second
	writeTimeout       = 10 * time.Second
	outboxSize         = 256
	hardReadLimit      = 4 * wire.MaxMessageSize
	messageRate        = 50 // per second, sustained
	messageBurst       = 200
	storeTimeout       = 5 * time.Second
	// storagePollInterval is how often a specialist's socket checks the upload backlog.
	storagePollInterval = time.Second
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	CheckOrigin:     sameOrigin,
}

// sameOrigin refuses sockets opened by other sites' pages (cross-site WebSocket hijacking);
// clients that are not browsers send no Origin and are allowed.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

func (s *Server) handleSignal(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	p := &participant{
		srv:        s,
		conn:       conn,
		outbox:     make(chan []byte, outboxSize),
		inbox:      make(chan []byte),
		limiter:    rate.NewLimiter(messageRate, messageBurst),
		log:        s.log.With("remote", r.RemoteAddr),
		remoteAddr: r.RemoteAddr,
	}
	s.sockets.Add(1)
	s.metrics.sockets.Inc()
	go func() {
		defer s.sockets.Done()
		defer s.metrics.sockets.Dec()
		p.run(s.socketCtx)
	}()
}

// participant is one signaling socket. It has a reader goroutine, a writer goroutine, and a
// loop (run) that owns all of its state.
type participant struct {
	srv     *Server
	conn    *websocket.Conn
	outbox  chan []byte // frames for the writer
	inbox   chan []byte // frames from the reader
	limiter *rate.Limiter
	log     *slog.Logger

	// Set by join.
	joined    bool
	orgID     string
	sessionID string
	id        string
	name      string
	role      rooms.Role
	state     rooms.ParticipantState
	peer      *media.Peer

	stopWatch  func()
	remoteAddr string
	timeline   *rooms.TimelineWatch

	lastQueue  string
	lastRoster string
	// uploadsBehind is the storage backlog this specialist was last told of.
	uploadsBehind int
	closeCode     int
	closeText     string
	overflowed    chan struct{} // closed when the outbox overflowed
	quit          chan struct{} // closed when the loop has ended
}

func (p *participant) run(ctx context.Context) {
	p.overflowed = make(chan struct{})
	p.quit = make(chan struct{})
	readerDone := make(chan error, 1)
	writerDone := make(chan struct{})
	go p.readLoop(readerDone)
	go p.writeLoop(writerDone)

	p.closeCode = websocket.CloseNormalClosure
	readerEnded := p.loop(ctx, readerDone)
	close(p.quit)
	p.leave()

	// Say goodbye, let the writer flush, then close the connection, which ends the reader.
	close(p.outbox)
	select {
	case <-writerDone:
	case <-time.After(writeTimeout):
	}
	_ = p.conn.Close()
	if !readerEnded {
		<-readerDone
	}
}

// loop owns the participant's state until the socket should close; it reports whether the
// reader has already ended.
func (p *participant) loop(ctx context.Context, readerDone <-chan error) (readerEnded bool) {
	joinDeadline := time.NewTimer(p.srv.joinTimeout)
	defer joinDeadline.Stop()
	var events <-chan rooms.Event
	var timeline <-chan []byte
	var timelineOverflow <-chan struct{}
	var peerDone <-chan struct{}
	var storagePoll <-chan time.Time // specialists only: is storage keeping up?
	defer func() {
		if p.stopWatch != nil {
			p.stopWatch()
		}
		if p.timeline != nil {
			p.timeline.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			p.closeCode, p.closeText = websocket.CloseServiceRestart, "server restarting"
			return false
		case <-p.overflowed:
			p.closeCode, p.closeText = websocket.ClosePolicyViolation, "too slow to read"
			return false
		case err := <-readerDone:
			if errors.Is(err, websocket.ErrReadLimit) {
				p.closeCode, p.closeText = websocket.CloseMessageTooBig, "message too large"
			}
			return true
		case frame := <-p.inbox:
			if !p.limiter.Allow() {
				p.srv.metrics.socketMessages.WithLabelValues("any", "rate_limited").Inc()
				p.sendError(wire.Errorf(wire.CodeRateLimited, "too many messages: slow down"))
				continue
			}
			wasJoined := p.joined
			if stop := p.handle(ctx, frame); stop {
				return false
			}
			if !wasJoined && p.joined {
				joinDeadline.Stop()
				ch, stop, err := p.srv.rooms.Watch(p.orgID, p.sessionID)
				if err != nil {
					p.log.Error("watch session", "err", err)
					p.sendError(wire.Errorf(wire.CodeInternal, "cannot follow the session"))
					return false
				}
				events, p.stopWatch = ch, stop
				if stop := p.refresh(ctx); stop {
					return false
				}
				if p.timeline, err = p.srv.rooms.WatchTimeline(p.orgID, p.sessionID); err != nil {
					p.log.Error("watch timeline", "err", err)
					return false
				}
				timeline, timelineOverflow = p.timeline.Entries, p.timeline.Overflowed
				p.sendHistory(ctx)
				if p.role == rooms.RoleSpecialist {
					poll := time.NewTicker(storagePollInterval)
					defer poll.Stop()
					storagePoll = poll.C
					p.reportStorage()
				}
			}
			if p.peer != nil && peerDone == nil {
				peerDone = p.peer.Done()
			}
		case <-events:
			if stop := p.refresh(ctx); stop {
				return false
			}
		case frame := <-timeline:
			p.relay(frame)
		case <-timelineOverflow:
			p.closeCode, p.closeText = websocket.CloseTryAgainLater, "fell behind: reconnect"
			return false
		case <-storagePoll:
			p.reportStorage()
		case <-peerDone:
			// The media connection failed or was closed; a new offer starts a new one.
			p.peer, peerDone = nil, nil
		case <-joinDeadline.C:
			if !p.joined {
				p.sendError(wire.Errorf(wire.CodeUnauthorized, "join within %s", p.srv.joinTimeout))
				p.closeCode, p.closeText = websocket.ClosePolicyViolation, "no join"
				return false
			}
		}
	}
}

func (p *participant) readLoop(done chan<- error) {
	// Frames a little over the limit are read and refused with a typed error; far larger ones
	// make the connection itself close with 1009 (message too big) before they are buffered.
	p.conn.SetReadLimit(hardReadLimit)
	_ = p.conn.SetReadDeadline(time.Now().Add(pongTimeout))
	p.conn.SetPongHandler(func(string) error {
		return p.conn.SetReadDeadline(time.Now().Add(pongTimeout))
	})
	for {
		kind, frame, err := p.conn.ReadMessage()
		if err != nil {
			done <- err
			return
		}
		_ = p.conn.SetReadDeadline(time.Now().Add(pongTimeout))
		if kind != websocket.TextMessage {
			frame = []byte("binary frame")
		}
		select {
		case p.inbox <- frame:
		case <-p.quit:
			done <- nil
			return
		}
	}
}

func (p *participant) writeLoop(done chan<- struct{}) {
	defer close(done)
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	for {
		select {
		case frame, ok := <-p.outbox:
			_ = p.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if !ok {
				_ = p.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(p.closeCode, p.closeText))
				return
			}
			if err := p.conn.WriteMessage(websocket.TextMessage, frame); err != nil {
				return
			}
		case <-ping.C:
			_ = p.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := p.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

// send queues a frame for the writer. It never blocks: a client too slow to read a full
// outbox is disconnected.
func (p *participant) send(t wire.Type, payload any) {
	frame, err := wire.Encode(t, payload)
	if err != nil {
		p.log.Error("encode", "type", t, "err", err)
		return
	}
	select {
	case p.outbox <- frame:
	default:
		select {
		case <-p.overflowed:
		default:
			close(p.overflowed)
		}
	}
}

func (p *participant) sendError(e *wire.Error) { p.send(wire.TypeError, e) }

// sendFrame queues an already-typed envelope.
func (p *participant) sendFrame(env wire.Envelope) { p.send(env.Type, env.Payload) }

// SendDescription implements media.Signaller.
func (p *participant) SendDescription(d webrtc.SessionDescription) {
	p.send(wire.TypeDescription, wire.Description{Type: d.Type.String(), SDP: d.SDP})
}

// SendCandidate implements media.Signaller.
func (p *participant) SendCandidate(c webrtc.ICECandidateInit) {
	p.send(wire.TypeCandidate, wire.Candidate{Candidate: c.Candidate, SDPMid: c.SDPMid,
		SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment})
}

// handle runs one client message; it reports whether the socket should close.
func (p *participant) handle(ctx context.Context, frame []byte) (stop bool) {
	typ, payload, err := wire.Decode(frame)
	if err != nil {
		p.srv.metrics.socketMessages.WithLabelValues(metricType(typ), "refused").Inc()
		p.sendError(err.(*wire.Error))
		return false
	}
	if !p.joined && typ != wire.TypeJoin {
		p.srv.metrics.socketMessages.WithLabelValues(string(typ), "refused").Inc()
		p.sendError(wire.Errorf(wire.CodeUnauthorized, "send join first"))
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	var werr *wire.Error
	switch m := payload.(type) {
	case *wire.Join:
		werr = p.join(ctx, m)
	case *wire.Admit:
		werr = p.admit(ctx, m)
	case *wire.Deny:
		werr = p.deny(ctx, m)
	case *wire.Description:
		werr = p.description(m)
	case *wire.Candidate:
		werr = p.candidate(m)
	case *wire.RecordSend:
		werr = p.recordCall(ctx, m.Active)
	default:
		switch typ {
		case wire.TypeEnd:
			werr = p.end(ctx)
		case wire.TypeLeave:
			p.closeText = "left"
			return true
		default:
			werr = p.tool(ctx, typ, payload)
		}
	}
	result := "ok"
	if werr != nil {
		result = "refused"
		p.sendError(werr)
	}
	p.srv.metrics.socketMessages.WithLabelValues(string(typ), result).Inc()
	// A failed join ends the socket: the client must start again with a good token.
	return werr != nil && typ == wire.TypeJoin && !p.joined
}

func metricType(t wire.Type) string {
	switch t {
	case wire.TypeJoin, wire.TypeAdmit, wire.TypeDeny, wire.TypeEnd, wire.TypeLeave, wire.TypeDescription, wire.TypeCandidate:
		return string(t)
	}
	return "unknown"
}

func (p *participant) join(ctx context.Context, m *wire.Join) *wire.Error {
	if p.joined {
		return wire.Errorf(wire.CodeInvalidState, "already joined")
	}
	req := rooms.JoinRequest{Name: m.Name}
	claims, err := p.srv.issuer.VerifyLink(m.Token)
	switch {
	case err == nil:
		p.orgID, p.sessionID = claims.Org, claims.Subject
		req.Role, req.Key = rooms.Role(claims.Role), "link:"+claims.ID
		if werr := p.linkOpen(ctx, claims.IssuedAt.Time); werr != nil {
			return werr
		}
	case errors.Is(err, auth.ErrWrongTarget):
		claims, err = p.srv.issuer.VerifyConsole(m.Token)
		if err != nil {
			return wire.Errorf(wire.CodeUnauthorized, "token: %v", err)
		}
		if m.SessionID == "" {
			return wire.Errorf(wire.CodeBadMessage, "a console token needs session_id")
		}
		sp, err := p.srv.rooms.Specialist(ctx, claims.Org, claims.Subject)
		if err != nil {
			return wire.Errorf(wire.CodeUnauthorized, "unknown specialist")
		}
		p.orgID, p.sessionID = claims.Org, m.SessionID
		req.Role, req.Key = rooms.RoleSpecialist, "specialist:"+sp.ID
		if req.Name == "" {
			req.Name = sp.Name
		}
	default:
		return wire.Errorf(wire.CodeUnauthorized, "token: %v", err)
	}
	if req.Name == "" {
		req.Name = map[rooms.Role]string{rooms.RoleCustomer: "Customer", rooms.RoleSpecialist: "Specialist"}[req.Role]
	}
	sess, me, err := p.srv.rooms.Join(ctx, p.orgID, p.sessionID, req)
	switch {
	case errors.Is(err, rooms.ErrNotFound):
		return wire.Errorf(wire.CodeNotFound, "no such session")
	case errors.Is(err, rooms.ErrEnded):
		p.send(wire.TypeSessionEnded, wire.SessionEnded{Reason: "the session has ended"})
		return wire.Errorf(wire.CodeForbidden, "the session has ended")
	case errors.Is(err, rooms.ErrDenied):
		p.send(wire.TypeDenied, wire.Denied{Reason: "you were not admitted"})
		return wire.Errorf(wire.CodeForbidden, "you were not admitted")
	case errors.Is(err, rooms.ErrInvalidState):
		return wire.Errorf(wire.CodeInvalidState, "%v", err)
	case err != nil:
		p.log.Error("join", "err", err)
		return wire.Errorf(wire.CodeInternal, "cannot join now")
	}
	p.joined, p.id, p.role, p.name = true, me.ID, me.Role, me.Name
	p.log = p.log.With("session", p.sessionID, "participant", p.id, "role", p.role)
	p.log.Info("joined")
	p.send(wire.TypeWelcome, wire.Welcome{ParticipantID: me.ID, SessionID: sess.ID, Role: string(me.Role),
		SessionState: string(sess.State), ICEServers: p.srv.iceServersFor(p.orgID, p.sessionID)})
	return nil
}

// linkOpen refuses a link outside its appointment's window or replaced by a newer one.
func (p *participant) linkOpen(ctx context.Context, issuedAt time.Time) *wire.Error {
	sess, err := p.srv.rooms.Session(ctx, p.orgID, p.sessionID)
	if err != nil {
		return roomsToWire(p.log, err)
	}
	switch err := sess.LinkOpen(issuedAt, time.Now()); {
	case err == nil, errors.Is(err, rooms.ErrEnded): // an ended session is told so by Join
		return nil
	default:
		return wire.Errorf(wire.CodeForbidden, "%v", err)
	}
}

func (p *participant) admit(ctx context.Context, m *wire.Admit) *wire.Error {
	if p.role != rooms.RoleSpecialist {
		return wire.Errorf(wire.CodeForbidden, "only a specialist can admit")
	}
	_, err := p.srv.rooms.Admit(ctx, p.orgID, p.sessionID, m.ParticipantID, p.id)
	if err == nil {
		p.record(ctx, audit.ActionParticipantAdmit, m.ParticipantID)
		p.srv.autoRecord(p.orgID, p.sessionID) // if the organisation records every call
	}
	return roomsToWire(p.log, err)
}

func (p *participant) deny(ctx context.Context, m *wire.Deny) *wire.Error {
	if p.role != rooms.RoleSpecialist {
		return wire.Errorf(wire.CodeForbidden, "only a specialist can deny")
	}
	reason := m.Reason
	if reason == "" {
		reason = "The specialist could not take your call."
	}
	_, err := p.srv.rooms.Deny(ctx, p.orgID, p.sessionID, m.ParticipantID, reason, p.id)
	if err == nil {
		p.record(ctx, audit.ActionParticipantDeny, m.ParticipantID)
	}
	return roomsToWire(p.log, err)
}

func (p *participant) end(ctx context.Context) *wire.Error {
	if p.role != rooms.RoleSpecialist {
		return wire.Errorf(wire.CodeForbidden, "only a specialist can end the session")
	}
	if _, err := p.srv.rooms.End(ctx, p.orgID, p.sessionID, "ended by the specialist", p.id); err != nil {
		return roomsToWire(p.log, err)
	}
	p.srv.closeSessionMedia(p.orgID, p.sessionID)
	p.record(ctx, audit.ActionSessionEnd, "")
	return nil
}

func (p *participant) description(m *wire.Description) *wire.Error {
	if p.state != rooms.ParticipantInCall {
		return wire.Errorf(wire.CodeInvalidState, "media starts once you are in the call")
	}
	if p.peer == nil {
		peer, err := p.srv.sfu.Room(p.sessionID).Join(p.id, p)
		if err != nil {
			p.log.Warn("sfu join", "err", err)
			return wire.Errorf(wire.CodeInvalidState, "media: %v", err)
		}
		p.peer = peer
	}
	desc := webrtc.SessionDescription{Type: webrtc.NewSDPType(m.Type), SDP: m.SDP}
	if err := p.peer.HandleDescription(desc); err != nil {
		p.log.Info("bad description", "err", err)
		return wire.Errorf(wire.CodeBadMessage, "description: %v", err)
	}
	return nil
}

func (p *participant) candidate(m *wire.Candidate) *wire.Error {
	if p.peer == nil {
		return wire.Errorf(wire.CodeInvalidState, "send a description first")
	}
	err := p.peer.HandleCandidate(webrtc.ICECandidateInit{Candidate: m.Candidate, SDPMid: m.SDPMid,
		SDPMLineIndex: m.SDPMLineIndex, UsernameFragment: m.UsernameFragment})
	if err != nil {
		return wire.Errorf(wire.CodeBadMessage, "candidate: %v", err)
	}
	return nil
}

// refresh re-reads the session after an event and tells the client what changed for it.
func (p *participant) refresh(ctx context.Context) (stop bool) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	sess, err := p.srv.rooms.Session(ctx, p.orgID, p.sessionID)
	if err != nil {
		p.log.Warn("refresh", "err", err)
		return false
	}
	if sess.State == rooms.SessionEnded {
		p.send(wire.TypeSessionEnded, wire.SessionEnded{Reason: sess.EndReason})
		p.closeText = "session ended"
		p.state = rooms.ParticipantLeft
		return true
	}
	me, ok := sess.Participant(p.id)
	if !ok {
		return true
	}
	previous := p.state
	p.state = me.State
	switch me.State {
	case rooms.ParticipantWaiting:
		p.send(wire.TypeWaiting, wire.Waiting{Position: sess.Position(p.id)})
	case rooms.ParticipantInCall:
		if previous != rooms.ParticipantInCall && p.role == rooms.RoleCustomer {
			p.send(wire.TypeAdmitted, wire.Empty{})
		}
	case rooms.ParticipantDenied:
		p.send(wire.TypeDenied, wire.Denied{Reason: me.DenyReason})
		p.closeText = "denied"
		return true
	case rooms.ParticipantLeft:
		// Another socket of the same person took over, or the session moved on without us.
		if previous != "" && previous != rooms.ParticipantLeft {
			return false
		}
	}
	if p.role == rooms.RoleSpecialist {
		p.sendQueue(sess)
	}
	if me.State == rooms.ParticipantInCall {
		p.sendRoster(sess)
	}
	return false
}

func (p *participant) sendQueue(sess *rooms.Session) {
	q := wire.Queue{Waiting: []wire.QueueEntry{}}
	for _, w := range sess.Waiting() {
		q.Waiting = append(q.Waiting, wire.QueueEntry{ParticipantID: w.ID, Name: w.Name, Since: w.JoinedAt.Format(time.RFC3339)})
	}
	if frame, _ := wire.Encode(wire.TypeQueue, q); string(frame) != p.lastQueue {
		p.lastQueue = string(frame)
		p.send(wire.TypeQueue, q)
	}
}

func (p *participant) sendRoster(sess *rooms.Session) {
	r := wire.Participants{Participants: []wire.RosterEntry{}}
	for _, x := range sess.Participants {
		if x.State == rooms.ParticipantInCall {
			r.Participants = append(r.Participants, wire.RosterEntry{ParticipantID: x.ID, Name: x.Name, Role: string(x.Role), State: string(x.State)})
		}
	}
	if frame, _ := wire.Encode(wire.TypeParticipants, r); string(frame) != p.lastRoster {
		p.lastRoster = string(frame)
		p.send(wire.TypeParticipants, r)
	}
}

// leave releases the participant's media and marks them gone, unless the session already ended.
func (p *participant) leave() {
	if p.peer != nil {
		p.peer.Close()
		p.peer = nil
	}
	if !p.joined || p.state == rooms.ParticipantLeft || p.state == rooms.ParticipantDenied {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if _, err := p.srv.rooms.Leave(ctx, p.orgID, p.sessionID, p.id); err != nil {
		p.log.Warn("leave", "err", err)
	}
	p.log.Info("left")
}

// reportStorage tells a specialist when recording uploads fall behind or catch up.
func (p *participant) reportStorage() {
	if n := p.srv.recorder.Backlog(); n != p.uploadsBehind {
		p.uploadsBehind = n
		p.send(wire.TypeStorage, wire.Storage{UploadsBehind: n})
	}
}

// recordCall starts or stops recording the call from the console.
func (p *participant) recordCall(ctx context.Context, active bool) *wire.Error {
	if p.role != rooms.RoleSpecialist {
		return wire.Errorf(wire.CodeForbidden, "only a specialist can record")
	}
	if p.state != rooms.ParticipantInCall {
		return wire.Errorf(wire.CodeInvalidState, "join the call first")
	}
	running := p.srv.activeRecordings(p.orgID, p.sessionID)
	switch {
	case active && len(running) > 0:
		return wire.Errorf(wire.CodeInvalidState, "already recording")
	case active:
		id, err := p.srv.startRecording(ctx, p.orgID, p.sessionID)
		if err != nil {
			p.log.Error("start recording", "err", err)
			return wire.Errorf(wire.CodeInternal, "could not start recording")
		}
		p.record(ctx, audit.ActionRecordingStart, id)
	case len(running) == 0:
		return wire.Errorf(wire.CodeInvalidState, "not recording")
	default:
		// The indicator goes off for everyone when the recording has stopped.
		event := p.auditEvent(audit.ActionRecordingStop, running[0])
		p.srv.stopRecordingsInBackground(p.orgID, p.sessionID, func(ctx context.Context) {
			p.srv.record(ctx, event)
		})
	}
	return nil
}

// record writes what this participant did to the audit trail.
func (p *participant) record(ctx context.Context, action, target string) {
	p.srv.record(ctx, p.auditEvent(action, target))
}

// auditEvent describes something this participant did.
func (p *participant) auditEvent(action, target string) audit.Event {
	kind := audit.ActorCustomer
	if p.role == rooms.RoleSpecialist {
		kind = audit.ActorSpecialist
	}
	return audit.Event{OrgID: p.orgID, Actor: audit.Actor{Kind: kind, ID: p.id, Name: p.name},
		Action: action, SessionID: p.sessionID, Target: target, RemoteAddr: p.remoteAddr}
}

func roomsToWire(log *slog.Logger, err error) *wire.Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rooms.ErrNotFound):
		return wire.Errorf(wire.CodeNotFound, "no such participant")
	case errors.Is(err, rooms.ErrInvalidState), errors.Is(err, rooms.ErrEnded), errors.Is(err, rooms.ErrConflict):
		return wire.Errorf(wire.CodeInvalidState, "%v", err)
	default:
		log.Error("rooms", "err", err)
		return wire.Errorf(wire.CodeInternal, "internal error")
	}
}
