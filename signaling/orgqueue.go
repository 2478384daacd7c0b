package signaling

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/signaling/problem"
	"github.com/assist-video/assist/signaling/wire"
)

// The organisation's live queue on the staff socket: every customer waiting in any of the
// organisation's sessions, from the node's QueueWatch of the organisation (queue.go, the same
// view the waiting customers' places come from), pushed on every change. Specialists admit or
// turn customers away from it (rooms.Admit: exactly one of two racing admissions wins), and
// transfer a waiting customer's session to a colleague (rooms.Transfer): the colleague is told
// on their staff socket and sees the session first in their queue.
//
// Offering: a customer who starts waiting in an ad hoc session (no appointment, not assigned)
// is offered (queue_offer) to the organisation's available specialists first; when nobody is
// available, or queue-offer-delay later if the customer still waits, to every specialist.

// ActionSessionTransfer is the audit action of a transfer.
const ActionSessionTransfer = "session.transfer"

// Offer stages of wire.QueueOffer.
const (
	offerAvailable = "available"
	offerEveryone  = "everyone"
)

// staffLive is what a signed-in staff socket follows; its loop owns it.
type staffLive struct {
	view      *rooms.QueueWatch
	leave     func()
	lastQueue string
	languages map[string]string // appointment id → the customer's language
}

func (l *staffLive) stop() {
	if l.leave != nil {
		l.leave()
	}
}

// followOrgQueue makes the socket follow the organisation's queue and sends it once.
func (s *Server) followOrgQueue(c *staffConn, live *staffLive) {
	view, leave, err := s.waiting.enter(c.orgID, c.queueNudge)
	if err != nil {
		c.log.Warn("org queue: follow", "err", err)
		return
	}
	live.view, live.leave = view, leave
	s.sendOrgQueue(c, live)
}

// orgQueue is the queue as one specialist sees it: sessions assigned to them first.
func (s *Server) orgQueue(ctx context.Context, orgID, specialistID string, snap *rooms.QueueSnapshot, names map[string]string, languages map[string]string) wire.OrgQueue {
	q := wire.OrgQueue{Waiting: []wire.OrgQueueEntry{}}
	var mine []wire.OrgQueueEntry
	for _, w := range snap.Waiting() {
		e := wire.OrgQueueEntry{SessionID: w.SessionID, ParticipantID: w.Participant.ID, Name: w.Participant.Name,
			Position: w.Position, Since: w.Participant.JoinedAt.UTC().Format(time.RFC3339), Kind: "ad_hoc",
			Diagnostics: w.Participant.Diagnostics, AssignedTo: w.AssignedTo, AssignedToName: names[w.AssignedTo],
			Reconnecting: w.Participant.State == rooms.ParticipantReconnecting}
		if w.AppointmentID != "" {
			e.Kind = "appointment"
			lang, ok := languages[w.AppointmentID]
			if !ok {
				if apt, err := s.rooms.Appointment(ctx, orgID, w.AppointmentID); err == nil {
					lang = apt.Customer.Language
				}
				languages[w.AppointmentID] = lang
			}
			e.Language = lang
		}
		if specialistID != "" && w.AssignedTo == specialistID {
			mine = append(mine, e)
		} else {
			q.Waiting = append(q.Waiting, e)
		}
	}
	q.Waiting = append(mine, q.Waiting...)
	return q
}

// sendOrgQueue sends the queue when it changed since the socket's last one.
func (s *Server) sendOrgQueue(c *staffConn, live *staffLive) {
	if live.view == nil {
		return
	}
	snap := live.view.Snapshot()
	if snap == nil {
		return // not loaded yet: the view nudges when it is
	}
	if live.languages == nil {
		live.languages = map[string]string{}
	}
	ctx, cancel := context.WithTimeout(s.socketCtx, storeTimeout)
	defer cancel()
	q := s.orgQueue(ctx, c.orgID, c.specialistID, snap, s.staff.names(c.orgID), live.languages)
	frame, err := wire.Encode(wire.TypeOrgQueue, q)
	if err != nil || string(frame) == live.lastQueue {
		return
	}
	live.lastQueue = string(frame)
	c.sendEncoded(frame)
}

// ---- actions from the queue ----

func (c *staffConn) auditEvent(action, sessionID, target string) audit.Event {
	return audit.Event{OrgID: c.orgID, Actor: audit.Actor{Kind: audit.ActorSpecialist, ID: c.specialistID, Name: c.name},
		Action: action, SessionID: sessionID, Target: target, RemoteAddr: c.remoteAddr}
}

func (s *Server) staffAdmit(ctx context.Context, c *staffConn, m *wire.QueueAdmit) *wire.Error {
	if _, err := s.rooms.Admit(ctx, c.orgID, m.SessionID, m.ParticipantID, c.specialistID); err != nil {
		return roomsToWire(c.log, err)
	}
	s.record(ctx, c.auditEvent(audit.ActionParticipantAdmit, m.SessionID, m.ParticipantID))
	s.autoRecord(c.orgID, m.SessionID)
	c.send(wire.TypeStaffDone, wire.StaffDone{Action: "admit", SessionID: m.SessionID, ParticipantID: m.ParticipantID})
	return nil
}

func (s *Server) staffDeny(ctx context.Context, c *staffConn, m *wire.QueueDeny) *wire.Error {
	reason := m.Reason
	if reason == "" {
		reason = "The specialist could not take your call."
	}
	if _, err := s.rooms.Deny(ctx, c.orgID, m.SessionID, m.ParticipantID, reason, c.specialistID); err != nil {
		return roomsToWire(c.log, err)
	}
	s.record(ctx, c.auditEvent(audit.ActionParticipantDeny, m.SessionID, m.ParticipantID))
	c.send(wire.TypeStaffDone, wire.StaffDone{Action: "deny", SessionID: m.SessionID, ParticipantID: m.ParticipantID})
	return nil
}

func (s *Server) staffTransfer(ctx context.Context, c *staffConn, m *wire.QueueTransfer) *wire.Error {
	if err := s.transfer(ctx, c.orgID, m.SessionID, m.SpecialistID, c.specialistID, c.name); err != nil {
		if errors.Is(err, errNoSuchColleague) {
			return wire.Errorf(wire.CodeNotFound, "no such specialist")
		}
		return roomsToWire(c.log, err)
	}
	s.record(ctx, c.auditEvent(ActionSessionTransfer, m.SessionID, m.SpecialistID))
	c.send(wire.TypeStaffDone, wire.StaffDone{Action: "transfer", SessionID: m.SessionID})
	return nil
}

var errNoSuchColleague = errors.New("no such specialist in the organisation")

// transfer assigns a waiting customer's session to a colleague and tells them.
func (s *Server) transfer(ctx context.Context, orgID, sessionID, to, by, byName string) error {
	if !rooms.ValidID(to) {
		return errNoSuchColleague
	}
	if _, err := s.rooms.Specialist(ctx, orgID, to); err != nil {
		return errNoSuchColleague
	}
	sess, err := s.rooms.Transfer(ctx, orgID, sessionID, to, by)
	if err != nil {
		return err
	}
	notice := wire.SessionAssigned{SessionID: sess.ID, By: by, ByName: byName}
	if waiting := sess.Waiting(); len(waiting) > 0 {
		notice.WaitingFor = waiting[0].Name
	}
	s.notifyStaff(orgID, to, wire.TypeSessionAssigned, notice)
	return nil
}

// offerCustomer offers a newly waiting ad hoc customer: to the available specialists first,
// to everyone when none is available or after queue-offer-delay if the customer still waits.
func (s *Server) offerCustomer(orgID, sessionID, participantID, name string, since time.Time) {
	offer := wire.QueueOffer{SessionID: sessionID, ParticipantID: participantID, Name: name, Since: since.UTC().Format(time.RFC3339)}
	s.workers.Go(func() {
		ctx, cancel := context.WithTimeout(s.socketCtx, storeTimeout)
		available, err := s.staff.available(ctx, orgID)
		cancel()
		if err != nil {
			s.log.Warn("offer: presence", "org", orgID, "err", err)
		}
		if len(available) == 0 || s.staff.offerDelay == 0 {
			offer.Stage = offerEveryone
			s.notifyStaff(orgID, "", wire.TypeQueueOffer, offer)
			return
		}
		offer.Stage = offerAvailable
		for _, id := range available {
			s.notifyStaff(orgID, id, wire.TypeQueueOffer, offer)
		}
		wait := time.NewTimer(s.staff.offerDelay)
		defer wait.Stop()
		select {
		case <-s.socketCtx.Done():
			return
		case <-wait.C:
		}
		ctx, cancel = context.WithTimeout(s.socketCtx, storeTimeout)
		defer cancel()
		sess, err := s.rooms.Session(ctx, orgID, sessionID)
		if err != nil || sess.State == rooms.SessionEnded || sess.AssignedTo != "" {
			return
		}
		if p, ok := sess.Participant(participantID); ok && p.Queued() {
			offer.Stage = offerEveryone
			s.notifyStaff(orgID, "", wire.TypeQueueOffer, offer)
		}
	})
}

// noteDiagnostics keeps a customer's device-check verdict on their participant record, for
// the organisation's queue (a hook of the diagnostics tool message).
func (s *Server) noteDiagnostics(ctx context.Context, p *participant, d *wire.DiagnosticsSend) {
	if p.role != rooms.RoleCustomer {
		return
	}
	if err := s.rooms.SetDiagnostics(ctx, p.orgID, p.sessionID, p.id, d.Verdict); err != nil {
		p.log.Warn("keep diagnostics verdict", "err", err)
	}
}

// ---- the API ----

type transferRequest struct {
	SpecialistID string `json:"specialist_id"`
}

// handleOrgQueue is the organisation's queue now (the console gets it live on the staff
// socket). A specialist sees the sessions assigned to them first.
func (s *Server) handleOrgQueue(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	snap, err := s.rooms.QueueNow(r.Context(), c.OrgID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	names := map[string]string{}
	if sps, err := s.rooms.ListSpecialists(r.Context(), c.OrgID); err == nil {
		for _, sp := range sps {
			names[sp.ID] = sp.Name
		}
	}
	writeJSON(w, http.StatusOK, s.orgQueue(r.Context(), c.OrgID, c.SpecialistID, snap, names, map[string]string{}))
}

func (s *Server) handleTransfer(w http.ResponseWriter, r *http.Request) {
	var in transferRequest
	if !readJSON(w, r, &in) {
		return
	}
	c := callerOf(r)
	sessionID := r.PathValue("id")
	if _, err := s.rooms.Session(r.Context(), c.OrgID, sessionID); err != nil {
		s.roomsError(w, r, err)
		return
	}
	by, byName := c.SpecialistID, ""
	if by == "" {
		by = "api"
	} else if sp, err := s.rooms.Specialist(r.Context(), c.OrgID, by); err == nil {
		byName = sp.Name
	}
	err := s.transfer(r.Context(), c.OrgID, sessionID, in.SpecialistID, by, byName)
	switch {
	case errors.Is(err, errNoSuchColleague):
		problem.Write(w, r, http.StatusUnprocessableEntity, "unknown-specialist", "specialist_id is not a specialist of the organisation")
		return
	case err != nil:
		s.roomsError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, ActionSessionTransfer, sessionID, in.SpecialistID))
	sess, err := s.rooms.Session(r.Context(), c.OrgID, sessionID)
	if err != nil {
		s.roomsError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, transferResult{SessionID: sess.ID, AssignedTo: sess.AssignedTo, AssignedBy: sess.AssignedBy, AssignedAt: sess.AssignedAt})
}

// transferResult is the session's assignment after a transfer.
type transferResult struct {
	SessionID  string     `json:"session_id"`
	AssignedTo string     `json:"assigned_to"`
	AssignedBy string     `json:"assigned_by"`
	AssignedAt *time.Time `json:"assigned_at"`
}
