package signaling

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
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
	// disconnectRetry is how often a dropped socket retries recording that the participant is
	// reconnecting while the store does not answer (NATS restarting).
	disconnectRetry = time.Second
)

// Close codes of our own (4000-4999 are the application's).
const (
	// closeReplaced: the same participant joined on a newer connection (a reload, another tab,
	// the page reconnecting before this socket's drop was noticed). The page must not
	// reconnect, or two tabs would take the participant from each other for ever.
	closeReplaced       = 4001
	closeReplacedReason = "replaced by a newer connection"
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	// Idle sockets (a waiting room of thousands) hold no write buffer between writes.
	WriteBufferPool: &sync.Pool{},
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
	socketDone, ok := s.openSocket()
	if !ok {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		socketDone()
		return // the upgrader has answered
	}
	p := &participant{
		srv:        s,
		conn:       conn,
		connID:     rooms.NewConnectionID(),
		inbox:      make(chan []byte),
		limiter:    rate.NewLimiter(messageRate, messageBurst),
		log:        s.log.With("remote", r.RemoteAddr),
		remoteAddr: r.RemoteAddr,
		relayedBy:  relayedFrom(r),
	}
	p.outbox.init(outboxSize, p.log)
	s.metrics.sockets.Inc()
	go func() {
		defer socketDone()
		p.run(s.socketCtx)
		s.metrics.sockets.Dec()
		p.holdPlace(s.socketCtx)
	}()
}

// openSocket counts a new socket unless the server is draining; done uncounts it. Counting
// and draining take one lock, so shutdown never waits on a socket it did not see.
func (s *Server) openSocket() (done func(), ok bool) {
	s.socketsMu.Lock()
	defer s.socketsMu.Unlock()
	if s.draining.Load() {
		return nil, false
	}
	s.sockets.Add(1)
	return s.sockets.Done, true
}

// participant is one signaling socket. It has a reader goroutine, a writer goroutine, and a
// loop (run) that owns all of its state.
type participant struct {
	srv     *Server
	conn    *websocket.Conn
	outbox              // frames for the writer
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

	key string // the person behind the participant (rooms.JoinRequest.Key)
	// language is what the participant speaks and reads (ISO 639-1, "" unknown): captions.go.
	language string
	// connID names this socket in the participant's record (rooms.Participant.Conn).
	connID string
	// How the socket ended: the participant hung up, or a newer socket took them over; else
	// the connection dropped and the participant is reconnecting until reconnectBy.
	hungUp      bool
	replaced    bool
	reconnectBy time.Time
	dropPending bool // the drop is not recorded yet: the store did not answer

	stopWatch  func()
	remoteAddr string
	timeline   *rooms.TimelineWatch

	lastQueue   string
	lastRoster  string
	lastWaiting string
	// While waiting (see queue.go): the organisation's line this socket follows, its nudge
	// when the line changes, and the queue-timeout notice.
	queueView        *rooms.QueueWatch
	queueNudge       chan struct{}
	leaveQueue       func()
	queueUnavailable bool // the line could not be followed: places are the session's
	queueTimeout     *time.Timer
	timedOutDue      bool // the customer has waited queue-timeout
	timedOutSent     bool // and has been told so, once
	// uploadsBehind is the storage backlog this specialist was last told of.
	uploadsBehind int
	closeCode     int
	closeText     string
	quit          chan struct{} // closed when the loop has ended
	writerStop    chan struct{} // closed when the writer should say goodbye
	// releaseSession gives back this socket's place in its session's socket limit.
	releaseSession func()
	// upstream carries this socket to its session's media node (relay.go); relayedBy names
	// the node that relayed this socket here.
	upstream  *relay
	relayedBy string
}

func (p *participant) run(ctx context.Context) {
	p.quit = make(chan struct{})
	p.writerStop = make(chan struct{})
	readerDone := make(chan error, 1)
	writerDone := make(chan struct{})
	go p.readLoop(readerDone)
	go p.writeLoop(writerDone)

	p.closeCode = websocket.CloseNormalClosure
	readerEnded := p.loop(ctx, readerDone)
	close(p.quit)
	p.leave()
	p.srv.staffOnLeave(p) // presence.go: no longer busy in this session
	if p.releaseSession != nil {
		p.releaseSession()
	}

	// Say goodbye, let the writer flush, then close the connection, which ends the reader.
	close(p.writerStop)
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
		p.exitQueue()
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
			if p.upstream != nil {
				if stop := p.forwardToRoom(frame); stop {
					return false
				}
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
		case <-p.queueNudge:
			p.sendWaiting(nil, false)
		case <-p.queueTimedOut():
			p.queueTimeout = nil
			p.timedOutDue = true
			p.sendWaiting(nil, true)
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
		case <-p.relayDone():
			p.relayEnded()
			return false
		case <-joinDeadline.C:
			if !p.joined && p.upstream == nil {
				p.sendError(wire.Errorf(wire.CodeUnauthorized, "join within %s", p.srv.joinTimeout))
				p.closeCode, p.closeText = websocket.ClosePolicyViolation, "no join"
				return false
			}
		}
	}
}

func (p *participant) readLoop(done chan<- error) { readFrames(p.conn, p.inbox, p.quit, done) }

// readFrames is a socket's reader: it hands text frames (a binary frame becomes text the
// decoder refuses) to the socket's loop until the connection fails (reported on done) or the
// loop has ended (quit). Frames a little over the limit are read and refused with a typed error
// by the loop; far larger ones make the connection itself close with 1009 (message too big)
// before they are buffered. Pongs keep the read deadline moving.
func readFrames(conn *websocket.Conn, inbox chan<- []byte, quit <-chan struct{}, done chan<- error) {
	conn.SetReadLimit(hardReadLimit)
	_ = conn.SetReadDeadline(time.Now().Add(pongTimeout))
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(pongTimeout))
	})
	for {
		kind, frame, err := conn.ReadMessage()
		if err != nil {
			done <- err
			return
		}
		_ = conn.SetReadDeadline(time.Now().Add(pongTimeout))
		if kind != websocket.TextMessage {
			frame = []byte("binary frame")
		}
		select {
		case inbox <- frame:
		case <-quit:
			done <- nil
			return
		}
	}
}

func (p *participant) writeLoop(done chan<- struct{}) {
	p.writeFrames(p.conn, p.writerStop, func() (int, string) { return p.closeCode, p.closeText }, done)
}

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
	case *wire.EmergencySend:
		werr = p.emergency(ctx, m)
	case *wire.StatsSend:
		werr = p.stats(ctx, m)
	default:
		switch typ {
		case wire.TypeEnd:
			werr = p.end(ctx)
		case wire.TypeLeave:
			p.closeText, p.hungUp = "left", true
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
		if werr := p.admitExpert(ctx, claims, &req); werr != nil { // invitations.go
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
		req.Name = map[rooms.Role]string{rooms.RoleCustomer: "Customer", rooms.RoleSpecialist: "Specialist", rooms.RoleExpert: "Expert"}[req.Role]
	}
	if werr := p.route(ctx, m); werr != nil || p.upstream != nil {
		return werr // relayed: the session's media node answers the join
	}
	req.Conn, req.Node = p.connID, p.srv.cfg.NodeID
	release, werr := p.srv.claimSessionSocket(p.sessionID)
	if werr != nil {
		return werr
	}
	p.releaseSession = release
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
	p.joined, p.id, p.role, p.name, p.key = true, me.ID, me.Role, me.Name, req.Key
	p.log = p.log.With("session", p.sessionID, "participant", p.id, "role", p.role)
	p.log.Info("joined")
	p.acceptInvitations(ctx) // invitations.go
	p.setCaptionLanguage(ctx, m.Language, sess)
	p.send(wire.TypeWelcome, wire.Welcome{ParticipantID: me.ID, SessionID: sess.ID, Role: string(me.Role),
		SessionState: string(sess.State), ICEServers: p.srv.iceServersFor(p.orgID, p.sessionID)})
	p.offerMessageAfterHours(ctx)       // video messages: outside opening hours, at once
	p.srv.staffOnJoin(ctx, p, sess, me) // presence.go: busy; offer a new ad hoc customer
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
		p.srv.quality.follow(p.orgID, p.sessionID)
	}
	desc := webrtc.SessionDescription{Type: webrtc.NewSDPType(m.Type), SDP: m.SDP}
	p.noteDescription(m.SDP)
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
	sess, rev, err := p.srv.rooms.SessionRevision(ctx, p.orgID, p.sessionID)
	if err != nil {
		p.log.Warn("refresh", "err", err)
		return false
	}
	if sess.State == rooms.SessionEnded {
		p.exitQueue()
		p.send(wire.TypeSessionEnded, wire.SessionEnded{Reason: sess.EndReason})
		p.closeText = "session ended"
		p.state = rooms.ParticipantLeft
		return true
	}
	me, ok := sess.Participant(p.id)
	if !ok {
		return true
	}
	if me.Conn != "" && me.Conn != p.connID {
		// The same participant joined on a newer socket: it speaks for them now.
		p.replaced = true
		p.closeCode, p.closeText = closeReplaced, closeReplacedReason
		p.log.Info("replaced by a newer connection")
		return true
	}
	previous := p.state
	p.state = me.State
	switch me.State {
	case rooms.ParticipantWaiting:
		p.enterQueue(me)
		if p.queueView != nil {
			p.queueView.Observe(sess, rev) // the view has this record by its next change
		}
		p.sendWaiting(sess, true)
	case rooms.ParticipantInCall:
		p.exitQueue()
		if previous != rooms.ParticipantInCall && p.role != rooms.RoleSpecialist { // customers, experts
			p.send(wire.TypeAdmitted, wire.Empty{})
			// While waiting they saw only chat: now the call's marks, photos and recording
			// state too (clients drop entries they already have, by id).
			p.sendHistory(ctx)
		}
		p.joinCaptions()
	case rooms.ParticipantDenied:
		p.exitQueue()
		p.send(wire.TypeDenied, wire.Denied{Reason: me.DenyReason})
		p.closeText = "denied"
		return true
	case rooms.ParticipantLeft, rooms.ParticipantReconnecting:
		// Marked gone while this socket lives (the store did not hear from it for a while, a
		// node restart's sweep): it is not, so it takes its place back.
		if previous != "" {
			return p.rejoin(ctx)
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
	// Whoever is reconnecting to the call stays on the roster, shown as reconnecting.
	for _, x := range sess.Participants {
		if x.InCall() {
			r.Participants = append(r.Participants, wire.RosterEntry{ParticipantID: x.ID, Name: x.Name, Role: string(x.Role), State: string(x.State)})
		}
	}
	if frame, _ := wire.Encode(wire.TypeParticipants, r); string(frame) != p.lastRoster {
		p.lastRoster = string(frame)
		p.send(wire.TypeParticipants, r)
	}
}

// leave releases the participant's media and says why the socket ended: a hang-up marks the
// participant left; a dropped connection makes them reconnecting (holdPlace ends that); a
// socket that a newer one replaced, or that ended with the participant already gone, changes
// nothing.
func (p *participant) leave() {
	p.closeRelay()
	p.leaveCaptions()
	if p.peer != nil {
		p.peer.Close()
		p.peer = nil
	}
	if !p.joined || p.replaced || p.state == rooms.ParticipantLeft || p.state == rooms.ParticipantDenied {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if p.hungUp {
		if _, err := p.srv.rooms.LeaveConnection(ctx, p.orgID, p.sessionID, p.id, p.connID); err != nil {
			p.log.Warn("leave", "err", err)
		}
		p.log.Info("left")
		return
	}
	p.dropPending = !p.disconnect(ctx)
}

// disconnect records that the socket dropped; it reports false when the store did not answer.
func (p *participant) disconnect(ctx context.Context) bool {
	deadline, err := p.srv.rooms.Disconnect(ctx, p.orgID, p.sessionID, p.id, p.connID)
	if err != nil {
		p.log.Warn("disconnect", "err", err)
		return false
	}
	p.reconnectBy = deadline
	if !deadline.IsZero() {
		p.log.Info("disconnected: reconnecting", "until", deadline)
	}
	return true
}

// holdPlace runs after the socket has closed: it makes sure a participant whose connection
// dropped is recorded as reconnecting (retrying while the store is unreachable), then marks
// them left if they have not come back by the deadline. It returns early when the server
// stops; the next start of this node finishes the job (Server.interruptPreviousRun).
func (p *participant) holdPlace(ctx context.Context) {
	if !p.dropPending && p.reconnectBy.IsZero() {
		return // nothing to hold: hung up, replaced, gone, or taken over meanwhile
	}
	for p.reconnectBy.IsZero() {
		if !p.stillMine(ctx) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(disconnectRetry):
		}
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		ok := p.disconnect(sctx)
		cancel()
		if ok && p.reconnectBy.IsZero() {
			return // taken over, or gone, meanwhile
		}
	}
	p.srv.expireAt(ctx, rooms.Reconnecting{OrgID: p.orgID, SessionID: p.sessionID, ParticipantID: p.id,
		Conn: p.connID, ReconnectBy: p.reconnectBy}, p.log)
}

// stillMine reports whether this socket may still speak for the participant (or the store
// cannot say).
func (p *participant) stillMine(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	sess, err := p.srv.rooms.Session(ctx, p.orgID, p.sessionID)
	if err != nil {
		return true
	}
	me, ok := sess.Participant(p.id)
	return ok && me.Conn == p.connID && sess.State != rooms.SessionEnded &&
		(me.State == rooms.ParticipantWaiting || me.State == rooms.ParticipantInCall)
}

// rejoin takes the participant's place back for this live socket after the store marked it
// gone (see refresh); it reports whether the socket should close.
func (p *participant) rejoin(ctx context.Context) (stop bool) {
	sess, me, err := p.srv.rooms.Join(ctx, p.orgID, p.sessionID, rooms.JoinRequest{Role: p.role, Key: p.key,
		Conn: p.connID, Node: p.srv.cfg.NodeID})
	if err != nil || me.ID != p.id {
		p.log.Warn("rejoin", "err", err)
		p.closeCode, p.closeText = websocket.CloseTryAgainLater, "lost the session: reconnect"
		return true
	}
	p.state = me.State
	if p.state != rooms.ParticipantWaiting {
		p.exitQueue()
	}
	p.log.Info("took the participant back")
	if p.role == rooms.RoleSpecialist {
		p.sendQueue(sess)
	}
	if p.state == rooms.ParticipantInCall {
		p.sendRoster(sess)
	}
	return false
}

// expireAt marks a reconnecting participant left at their deadline unless they came back; it
// returns early when ctx ends.
func (s *Server) expireAt(ctx context.Context, r rooms.Reconnecting, log *slog.Logger) {
	wait := time.NewTimer(time.Until(r.ReconnectBy))
	defer wait.Stop()
	select {
	case <-ctx.Done():
		return
	case <-wait.C:
	}
	for {
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		_, err := s.rooms.ExpireReconnect(sctx, r.OrgID, r.SessionID, r.ParticipantID, r.Conn)
		cancel()
		if err == nil || errors.Is(err, rooms.ErrNotFound) {
			return
		}
		log.Warn("expire reconnecting participant", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(disconnectRetry):
		}
	}
}

// interruptPreviousRun runs once at start, before the node serves: the sockets this node held
// before it stopped are gone, so their participants become reconnecting (their sessions stay
// joinable with the same links) and are marked left if they do not come back in time.
func (s *Server) interruptPreviousRun(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dropped, err := s.rooms.InterruptNode(sctx, s.cfg.NodeID)
	if err != nil {
		s.log.Error("interrupting the previous run's sessions", "err", err)
	}
	if len(dropped) > 0 {
		s.log.Info("participants of the previous run are reconnecting", "count", len(dropped))
	}
	for _, r := range dropped {
		log := s.log.With("session", r.SessionID, "participant", r.ParticipantID)
		s.workers.Go(func() { s.expireAt(ctx, r, log) })
	}
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
	switch p.role {
	case rooms.RoleSpecialist:
		kind = audit.ActorSpecialist
	case rooms.RoleExpert:
		kind = audit.ActorExpert
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
