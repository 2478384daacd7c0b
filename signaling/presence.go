package signaling

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/problem"
	"github.com/assist-video/assist/signaling/wire"
)

// Presence (see rooms/presence.go): the staff socket keeps the specialist's console open
// (ConsoleOpened/ConsoleClosed, offline after presence-offline-grace), their session sockets
// make them busy (EnteredSession/LeftSession), and they choose available, busy or away by
// hand. Each node watches the presence records of the organisations whose consoles it holds
// and pushes the list to them on every change.

// permConsole is held by signed-in specialists only (of every role), never by API keys: the
// routes that act as "me".
const permConsole = "console"

// newStaffHub opens what the staff sockets need and forgets the consoles this node held
// before it restarted.
func newStaffHub(ctx context.Context, s *Server) (*staffHub, error) {
	h := &staffHub{srv: s, orgs: map[string]*staffOrg{}, grace: s.cfg.PresenceOfflineGrace, offerDelay: s.cfg.QueueOfferDelay}
	var err error
	if h.presence, err = rooms.OpenPresence(ctx, s.bus); err != nil {
		return nil, err
	}
	if h.chat, err = rooms.OpenTeamChat(ctx, s.bus); err != nil {
		return nil, err
	}
	if err := h.presence.DropNodeConsoles(ctx, s.cfg.NodeID, h.grace); err != nil {
		s.log.Warn("presence: forgetting the previous run's consoles", "err", err)
	}
	return h, nil
}

// startPresence begins following an organisation's presence on this node; h.mu is held.
func (h *staffHub) startPresence(orgID string, org *staffOrg) {
	w, err := h.presence.WatchPresence(orgID, func(records map[string]*rooms.PresenceRecord) {
		h.presenceChanged(orgID, org, records)
	})
	if err != nil {
		h.srv.log.Warn("presence: watch", "org", orgID, "err", err)
		return
	}
	org.presenceWatch = w
}

// presenceChanged recomputes the organisation's presence list and pushes it to this node's
// consoles of the organisation. It runs on the watch's goroutine.
func (h *staffHub) presenceChanged(orgID string, org *staffOrg, records map[string]*rooms.PresenceRecord) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	list, names, err := h.presenceList(ctx, orgID, records)
	if err != nil {
		h.srv.log.Warn("presence: list", "org", orgID, "err", err)
		return
	}
	frame, err := wire.Encode(wire.TypePresence, wire.Presence{Specialists: list})
	if err != nil {
		return
	}
	h.mu.Lock()
	if h.orgs[orgID] != org {
		h.mu.Unlock()
		return
	}
	org.presenceFrame, org.records, org.names = frame, records, names
	conns := make([]*staffConn, 0, len(org.conns))
	for c := range org.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.sendEncoded(frame)
		c.nudgeQueue() // names and assignments in the queue view may have changed
	}
}

// presenceList is every specialist of the organisation with their presence, by name.
func (h *staffHub) presenceList(ctx context.Context, orgID string, records map[string]*rooms.PresenceRecord) ([]wire.PresenceEntry, map[string]string, error) {
	sps, err := h.srv.rooms.ListSpecialists(ctx, orgID)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	names := make(map[string]string, len(sps))
	list := make([]wire.PresenceEntry, 0, len(sps))
	for _, sp := range sps {
		names[sp.ID] = sp.Name
		e := wire.PresenceEntry{SpecialistID: sp.ID, Name: sp.Name, Status: wire.PresenceOffline, Manual: wire.PresenceAvailable}
		if r := records[sp.ID]; r != nil {
			e.Status = r.Effective(now, h.grace)
			e.Manual = cmpOr(r.Manual, wire.PresenceAvailable)
			e.InSession = len(r.Sessions) > 0
			if !r.Since.IsZero() {
				e.Since = r.Since.Format(time.RFC3339)
			}
		}
		list = append(list, e)
	}
	slices.SortFunc(list, func(a, b wire.PresenceEntry) int {
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(a.SpecialistID, b.SpecialistID)
	})
	return list, names, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// available lists the organisation's specialists whose presence is available now.
func (h *staffHub) available(ctx context.Context, orgID string) ([]string, error) {
	records, err := h.presence.OrgPresence(ctx, orgID)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var out []string
	for id, r := range records {
		if r.Effective(now, h.grace) == rooms.PresenceAvailable {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out, nil
}

// ---- the staff socket's side ----

// staffJoined runs once a staff socket has signed in: the console is open (presence), and it
// gets the colleagues' presence, the chat's history and unread counts, and the live queue.
func (s *Server) staffJoined(ctx context.Context, c *staffConn, live *staffLive) {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if _, err := s.staff.presence.ConsoleOpened(sctx, c.orgID, c.specialistID, c.connID, s.cfg.NodeID, s.staff.grace); err != nil {
		c.log.Warn("presence: console opened", "err", err)
	}
	s.sendTeamHistory(sctx, c)
	s.followOrgQueue(c, live)
}

// staffLeft runs when a signed-in staff socket has closed: with no console left, the
// specialist shows offline after the grace.
func (s *Server) staffLeft(c *staffConn) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	rec, err := s.staff.presence.ConsoleClosed(ctx, c.orgID, c.specialistID, c.connID, s.staff.grace)
	if err != nil {
		c.log.Warn("presence: console closed", "err", err)
		return
	}
	if len(rec.Consoles) > 0 {
		return
	}
	orgID, specialistID, grace := c.orgID, c.specialistID, s.staff.grace
	s.workers.Go(func() {
		wait := time.NewTimer(grace)
		defer wait.Stop()
		select {
		case <-s.socketCtx.Done():
			return
		case <-wait.C:
		}
		ctx, cancel := context.WithTimeout(s.socketCtx, storeTimeout)
		defer cancel()
		if _, err := s.staff.presence.MarkOfflineIfGone(ctx, orgID, specialistID, grace); err != nil {
			s.log.Warn("presence: mark offline", "org", orgID, "specialist", specialistID, "err", err)
		}
	})
}

func (s *Server) staffSetPresence(ctx context.Context, c *staffConn, status string) *wire.Error {
	if _, err := s.staff.presence.SetManualPresence(ctx, c.orgID, c.specialistID, status, s.staff.grace); err != nil {
		return roomsToWire(c.log, err)
	}
	return nil
}

// ---- session sockets: busy while in a session ----

// specialistOf is the named specialist behind a session socket, or "" (a customer, an expert,
// or a specialist who came with a session's specialist link).
func specialistOf(p *participant) string {
	if p.role != rooms.RoleSpecialist {
		return ""
	}
	id, _ := strings.CutPrefix(p.key, "specialist:")
	if id == p.key {
		return ""
	}
	return id
}

// staffOnJoin runs after a session socket joined: a named specialist is busy; a newly waiting
// ad hoc customer is offered to the organisation's specialists (see offerCustomer).
func (s *Server) staffOnJoin(ctx context.Context, p *participant, sess *rooms.Session, me *rooms.Participant) {
	if id := specialistOf(p); id != "" {
		if _, err := s.staff.presence.EnteredSession(ctx, p.orgID, id, p.sessionID, s.cfg.NodeID, p.connID, s.staff.grace); err != nil {
			p.log.Warn("presence: entered session", "err", err)
		}
		return
	}
	if me.Role == rooms.RoleCustomer && me.State == rooms.ParticipantWaiting && sess.AppointmentID == "" &&
		sess.AssignedTo == "" && time.Since(me.JoinedAt) < 10*time.Second {
		s.offerCustomer(p.orgID, sess.ID, me.ID, me.Name, me.JoinedAt)
	}
}

// staffOnLeave runs when a session socket has closed: the specialist is no longer busy in
// that session (back to their manual presence unless they are in another).
func (s *Server) staffOnLeave(p *participant) {
	id := specialistOf(p)
	if id == "" || !p.joined {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if _, err := s.staff.presence.LeftSession(ctx, p.orgID, id, p.sessionID, s.cfg.NodeID, p.connID, s.staff.grace); err != nil {
		p.log.Warn("presence: left session", "err", err)
	}
}

// ---- the API ----

type presenceList struct {
	Data []wire.PresenceEntry `json:"data"`
}

type presenceUpdate struct {
	Status string `json:"status"`
}

func (s *Server) handleListPresence(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	records, err := s.staff.presence.OrgPresence(r.Context(), c.OrgID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	list, _, err := s.staff.presenceList(r.Context(), c.OrgID, records)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, presenceList{Data: list})
}

func (s *Server) handleSetPresence(w http.ResponseWriter, r *http.Request) {
	var in presenceUpdate
	if !readJSON(w, r, &in) {
		return
	}
	if !wire.ValidManualPresence(in.Status) {
		problem.Write(w, r, http.StatusBadRequest, "bad-request", `status must be "available", "busy" or "away"`)
		return
	}
	c := callerOf(r)
	if _, err := s.staff.presence.SetManualPresence(r.Context(), c.OrgID, c.SpecialistID, in.Status, s.staff.grace); err != nil {
		s.roomsError(w, r, err)
		return
	}
	records, err := s.staff.presence.OrgPresence(r.Context(), c.OrgID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	list, _, err := s.staff.presenceList(r.Context(), c.OrgID, records)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	for _, e := range list {
		if e.SpecialistID == c.SpecialistID {
			writeJSON(w, http.StatusOK, e)
			return
		}
	}
	problem.Write(w, r, http.StatusNotFound, "not-found", "no such specialist")
}
