package signaling

import (
	"errors"
	"net/http"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/problem"
	"github.com/assist-video/assist/signaling/wire"
)

// Handing a session over: POST /v1/sessions/{id}/handover {specialist_id}. The session's
// specialist becomes the colleague (rooms.Session.HandedOverTo), the colleague is invited
// (kind handover: pushed to their console, listed by GET /v1/invitations), the audit trail gets
// session.handover and the call's timeline a handover entry that everyone in the call sees.
// The specialist handing over then leaves (the console sends leave at once): a specialist
// leaving never ends the session, and nobody else's media is touched, so the customer stays
// connected on the same peer connection throughout; the colleague's tracks arrive when they
// join, as any participant's do.

type handoverRequest struct {
	SpecialistID string `json:"specialist_id"`
}

type handoverReply struct {
	SessionID    string         `json:"session_id"`
	HandedOverTo string         `json:"handed_over_to"`
	Invitation   invitationView `json:"invitation"`
}

func (s *Server) handleHandover(w http.ResponseWriter, r *http.Request) {
	var in handoverRequest
	if !readJSON(w, r, &in) {
		return
	}
	c := callerOf(r)
	sess, ok := s.liveSession(w, r)
	if !ok {
		return
	}
	to, ok := s.colleague(w, r, c, in.SpecialistID)
	if !ok {
		return
	}
	by, byName := s.inviter(r.Context(), c)
	now := time.Now().UTC()
	sess, inv, err := s.rooms.HandOver(r.Context(), sess.OrgID, sess.ID, rooms.Invitation{SpecialistID: to.ID, Name: to.Name,
		InvitedBy: by, InvitedByName: byName, CreatedAt: now, ExpiresAt: now.Add(colleagueInviteTTL)})
	switch {
	case errors.Is(err, rooms.ErrEnded):
		problem.Write(w, r, http.StatusConflict, "invalid-state", "the session has ended")
		return
	case err != nil:
		s.roomsError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, actionSessionHandover, sess.ID, "specialist:"+to.ID))
	entry := wire.Handover{Meta: wire.Meta{ID: newMessageID(), Time: now,
		From: wire.Sender{ParticipantID: s.participantOf(sess, "specialist:"+by), Role: string(rooms.RoleSpecialist), Name: byName}},
		FromSpecialist: wire.Specialist{SpecialistID: by, Name: byName},
		ToSpecialist:   wire.Specialist{SpecialistID: to.ID, Name: to.Name}}
	if werr := s.publishTool(r.Context(), sess.OrgID, sess.ID, wire.TypeHandover, entry, true); werr != nil {
		s.log.Warn("handover timeline entry", "session", sess.ID, "err", werr.Message)
	}
	s.tellInvited(inv)
	writeJSON(w, http.StatusOK, handoverReply{SessionID: sess.ID, HandedOverTo: to.ID, Invitation: viewInvitation(inv, now)})
}

// participantOf is the participant id behind a key in a session, or "".
func (s *Server) participantOf(sess *rooms.Session, key string) string {
	for _, p := range sess.Participants {
		if p.Key == key {
			return p.ID
		}
	}
	return ""
}
