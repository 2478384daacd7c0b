package signaling

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/wire"
)

// The staff socket (GET /v1/staff) is a signed-in specialist's console outside any call. It
// carries presence, the specialists' chat, the organisation's live queue and notices from the
// rest of the server (notifyStaff). Like /v1/signal it has one reader, one writer and one loop
// that owns the socket's state; the first message is staff_hello with the console token.
//
// Notices travel over core NATS so that a specialist is reached on whichever node holds their
// console: subject assist.staff.<org>.sp.<specialist> for one specialist and
// assist.staff.<org>.all for the whole organisation. A node subscribes to assist.staff.<org>.>
// while it holds at least one staff socket of the organisation.

const (
	staffSubjectRoot = "assist.staff."
	staffOutboxSize  = 256
	staffMessageRate = 20 // per second, sustained
	staffBurst       = 60
)

// staffSubject is where a notice for one specialist (or, with specialistID "", for the whole
// organisation) is published.
func staffSubject(orgID, specialistID string) string {
	if specialistID == "" {
		return staffSubjectRoot + orgID + ".all"
	}
	return staffSubjectRoot + orgID + ".sp." + specialistID
}

// notifyStaff pushes a typed notice to one specialist's open consoles (or, with specialistID
// "", to every specialist of the organisation) on any node. Nobody connected: nothing happens;
// notices are not stored. It never blocks on a slow console.
func (s *Server) notifyStaff(orgID, specialistID string, typ wire.Type, payload any) {
	frame, err := wire.Encode(typ, payload)
	if err != nil {
		s.log.Error("staff notice: encode", "type", typ, "err", err)
		return
	}
	s.publishStaff(orgID, specialistID, frame)
}

// publishStaff publishes an encoded frame for notifyStaff.
func (s *Server) publishStaff(orgID, specialistID string, frame []byte) {
	if !rooms.ValidID(orgID) || (specialistID != "" && !rooms.ValidID(specialistID)) {
		return
	}
	if err := s.bus.Conn.Publish(staffSubject(orgID, specialistID), frame); err != nil {
		s.log.Warn("staff notice: publish", "org", orgID, "err", err)
	}
}

// staffHub is this node's staff sockets by organisation, and the stores behind them.
type staffHub struct {
	srv        *Server
	presence   *rooms.Presence
	chat       *rooms.TeamChat
	grace      time.Duration // presence-offline-grace
	offerDelay time.Duration // queue-offer-delay

	mu     sync.Mutex
	orgs   map[string]*staffOrg
	closed bool
}

// staffOrg is one organisation's staff sockets on this node, its NATS subscription and its
// presence as last seen.
type staffOrg struct {
	conns         map[*staffConn]struct{}
	sub           *nats.Subscription
	presenceWatch *rooms.PresenceWatch
	presenceFrame []byte                           // the latest presence message
	records       map[string]*rooms.PresenceRecord // by specialist id
	names         map[string]string                // specialists' names by id
}

// add registers a signed-in staff socket and sends it the organisation's presence.
func (h *staffHub) add(c *staffConn) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return rooms.ErrEnded
	}
	org := h.orgs[c.orgID]
	if org == nil {
		org = &staffOrg{conns: map[*staffConn]struct{}{}}
		orgID := c.orgID
		sub, err := h.srv.bus.Conn.Subscribe(staffSubjectRoot+orgID+".>", func(m *nats.Msg) { h.deliver(orgID, m) })
		if err != nil {
			return err
		}
		org.sub = sub
		h.orgs[orgID] = org
		h.startPresence(orgID, org)
	}
	org.conns[c] = struct{}{}
	if org.presenceFrame != nil {
		c.sendEncoded(org.presenceFrame) // later changes come from the watch
	}
	return nil
}

// remove forgets a staff socket; the organisation's subscription and watch go with its last
// socket.
func (h *staffHub) remove(c *staffConn) {
	h.mu.Lock()
	org := h.orgs[c.orgID]
	if org == nil {
		h.mu.Unlock()
		return
	}
	delete(org.conns, c)
	if len(org.conns) > 0 {
		h.mu.Unlock()
		return
	}
	delete(h.orgs, c.orgID)
	h.mu.Unlock()
	org.stop()
}

func (org *staffOrg) stop() {
	_ = org.sub.Unsubscribe()
	if org.presenceWatch != nil {
		org.presenceWatch.Stop()
	}
}

// names is the organisation's specialists' names as last seen (a map never changed, only
// replaced).
func (h *staffHub) names(orgID string) map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if org := h.orgs[orgID]; org != nil {
		return org.names
	}
	return nil
}

// local lists this node's staff sockets of an organisation (of one specialist, unless
// specialistID is "").
func (h *staffHub) local(orgID, specialistID string) []*staffConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	org := h.orgs[orgID]
	if org == nil {
		return nil
	}
	out := make([]*staffConn, 0, len(org.conns))
	for c := range org.conns {
		if specialistID == "" || c.specialistID == specialistID {
			out = append(out, c)
		}
	}
	return out
}

// deliver hands a notice from NATS to the addressed local sockets (never blocking).
func (h *staffHub) deliver(orgID string, m *nats.Msg) {
	rest := strings.TrimPrefix(m.Subject, staffSubjectRoot+orgID+".")
	specialistID := ""
	if id, ok := strings.CutPrefix(rest, "sp."); ok {
		specialistID = id
	} else if rest != "all" {
		return
	}
	for _, c := range h.local(orgID, specialistID) {
		c.sendEncoded(m.Data)
	}
}

// close stops every subscription; it runs at shutdown, once the sockets have closed.
func (h *staffHub) close() {
	h.mu.Lock()
	h.closed = true
	orgs := h.orgs
	h.orgs = map[string]*staffOrg{}
	h.mu.Unlock()
	for _, org := range orgs {
		org.stop()
	}
}

// staffConn is one staff socket.
type staffConn struct {
	srv  *Server
	conn *websocket.Conn
	outbox
	inbox   chan []byte
	limiter *rate.Limiter
	log     *slog.Logger

	// Set by staff_hello.
	orgID        string
	specialistID string
	name         string
	role         rooms.StaffRole
	connID       string
	remoteAddr   string

	closeCode int
	closeText string
	quit      chan struct{} // closed when the loop has ended: the writer flushes and closes
	// queueNudge (capacity one) says the organisation's queue or names changed.
	queueNudge chan struct{}
}

func (s *Server) handleStaff(w http.ResponseWriter, r *http.Request) {
	socketDone, ok := s.openSocket()
	if !ok {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		socketDone()
		return
	}
	c := &staffConn{
		srv:        s,
		conn:       conn,
		inbox:      make(chan []byte),
		limiter:    rate.NewLimiter(staffMessageRate, staffBurst),
		log:        s.log.With("remote", r.RemoteAddr, "socket", "staff"),
		connID:     rooms.NewConnectionID(),
		remoteAddr: r.RemoteAddr,
		quit:       make(chan struct{}),
		queueNudge: make(chan struct{}, 1),
	}
	c.outbox.init(staffOutboxSize, c.log)
	go func() {
		defer socketDone()
		c.run(s.socketCtx)
	}()
}

func (c *staffConn) run(ctx context.Context) {
	readerDone := make(chan error, 1)
	writerDone := make(chan struct{})
	go c.readLoop(readerDone)
	go c.writeLoop(writerDone)
	c.closeCode = websocket.CloseNormalClosure
	readerEnded := c.loop(ctx, readerDone)
	close(c.quit)
	if c.specialistID != "" {
		c.srv.staff.remove(c)
		c.srv.staffLeft(c)
	}
	select {
	case <-writerDone:
	case <-time.After(writeTimeout):
	}
	_ = c.conn.Close()
	if !readerEnded {
		<-readerDone
	}
}

// loop owns the socket's state until it should close; it reports whether the reader ended.
func (c *staffConn) loop(ctx context.Context, readerDone <-chan error) (readerEnded bool) {
	helloDeadline := time.NewTimer(c.srv.joinTimeout)
	defer helloDeadline.Stop()
	var live staffLive // what the signed-in console follows (presence.go, orgqueue)
	defer live.stop()
	for {
		select {
		case <-ctx.Done():
			c.closeCode, c.closeText = websocket.CloseServiceRestart, "server restarting"
			return false
		case <-c.overflowed:
			c.closeCode, c.closeText = websocket.ClosePolicyViolation, "too slow to read"
			return false
		case err := <-readerDone:
			if errors.Is(err, websocket.ErrReadLimit) {
				c.closeCode, c.closeText = websocket.CloseMessageTooBig, "message too large"
			}
			return true
		case <-helloDeadline.C:
			if c.specialistID == "" {
				c.sendError(wire.Errorf(wire.CodeUnauthorized, "send staff_hello within %s", c.srv.joinTimeout))
				c.closeCode, c.closeText = websocket.ClosePolicyViolation, "no hello"
				return false
			}
		case <-c.queueNudge:
			c.srv.sendOrgQueue(c, &live)
		case frame := <-c.inbox:
			if !c.limiter.Allow() {
				c.sendError(wire.Errorf(wire.CodeRateLimited, "too many messages: slow down"))
				continue
			}
			signedIn := c.specialistID != ""
			if stop := c.handle(ctx, frame, &live); stop {
				return false
			}
			if !signedIn && c.specialistID != "" {
				helloDeadline.Stop()
				c.srv.staffJoined(ctx, c, &live)
			}
		}
	}
}

// handle runs one client message; it reports whether the socket should close.
func (c *staffConn) handle(ctx context.Context, frame []byte, live *staffLive) (stop bool) {
	typ, payload, err := wire.DecodeStaff(frame)
	if err != nil {
		c.sendError(err.(*wire.Error))
		return false
	}
	if c.specialistID == "" && typ != wire.TypeStaffHello {
		c.sendError(wire.Errorf(wire.CodeUnauthorized, "send staff_hello first"))
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	var werr *wire.Error
	switch m := payload.(type) {
	case *wire.StaffHello:
		werr = c.hello(ctx, m)
		if werr != nil {
			c.sendError(werr)
			c.closeCode, c.closeText = websocket.ClosePolicyViolation, "bad hello"
			return true
		}
		return false
	case *wire.PresenceSet:
		werr = c.srv.staffSetPresence(ctx, c, m.Status)
	case *wire.TeamSend:
		werr = c.srv.staffTeamSend(ctx, c, m)
	case *wire.TeamRead:
		werr = c.srv.staffTeamRead(ctx, c, m)
	case *wire.QueueAdmit:
		werr = c.srv.staffAdmit(ctx, c, m)
	case *wire.QueueDeny:
		werr = c.srv.staffDeny(ctx, c, m)
	case *wire.QueueTransfer:
		werr = c.srv.staffTransfer(ctx, c, m)
	}
	if werr != nil {
		c.sendError(werr)
	}
	return false
}

func (c *staffConn) hello(ctx context.Context, m *wire.StaffHello) *wire.Error {
	if c.specialistID != "" {
		return wire.Errorf(wire.CodeInvalidState, "already signed in")
	}
	claims, err := c.srv.issuer.VerifyConsole(m.Token)
	if err != nil {
		return wire.Errorf(wire.CodeUnauthorized, "token: %v", err)
	}
	sp, err := c.srv.rooms.Specialist(ctx, claims.Org, claims.Subject)
	if err != nil {
		return wire.Errorf(wire.CodeUnauthorized, "unknown specialist")
	}
	c.orgID, c.specialistID, c.name, c.role = sp.OrgID, sp.ID, sp.Name, sp.EffectiveRole()
	if err := c.srv.staff.add(c); err != nil {
		c.specialistID = ""
		c.log.Warn("staff socket: register", "err", err)
		return wire.Errorf(wire.CodeInternal, "cannot open the console now")
	}
	c.log = c.log.With("org", c.orgID, "specialist", c.specialistID)
	c.send(wire.TypeStaffWelcome, wire.StaffWelcome{SpecialistID: sp.ID, OrganizationID: sp.OrgID, Name: sp.Name, Role: string(c.role)})
	return nil
}

func (c *staffConn) readLoop(done chan<- error) { readFrames(c.conn, c.inbox, c.quit, done) }

// writeLoop sends the queued frames until the loop ends, then flushes what it queued (a last
// error) and says goodbye.
func (c *staffConn) writeLoop(done chan<- struct{}) {
	c.writeFrames(c.conn, c.quit, func() (int, string) { return c.closeCode, c.closeText }, done)
}

// nudgeQueue asks the socket's loop to look at the queue again (never blocks).
func (c *staffConn) nudgeQueue() {
	select {
	case c.queueNudge <- struct{}{}:
	default:
	}
}
