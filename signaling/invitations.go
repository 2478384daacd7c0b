package signaling

import (
	"context"
	"errors"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/problem"
	"github.com/assist-video/assist/signaling/wire"
	"github.com/assist-video/assist/webclient"
)

// Inviting people into a live session (see rooms/invitations.go for the record):
//
//   - a colleague: POST /v1/sessions/{id}/invitations {kind: "colleague", specialist_id}. Their
//     console learns of it (a staff push where the staff socket exists, and GET /v1/invitations,
//     which the console polls) and joins with one click: its own console token and the
//     session's id, straight into the call like any specialist. Joining accepts the invitation.
//   - an outside expert: {kind: "expert", name?, email?, phone?, expires_in_seconds?}. The reply
//     carries a one-off link /e/{jwt} with the expert role, for this session only, valid until
//     the invitation expires and only while it is not revoked
//     (DELETE /v1/sessions/{id}/invitations/{iid}); revoking also takes an expert who is in the
//     call out of it. Experts skip the waiting room, see and hear everyone, chat and point (see
//     toolRules); they cannot admit, deny, end, record, annotate, control the camera or see the
//     customer's location and device data.

// Invitation lifetimes.
const (
	defaultExpertTTL    = 2 * time.Hour
	maxExpertTTL        = 24 * time.Hour
	colleagueInviteTTL  = 15 * time.Minute
	maxInvitationNameLn = 80
	// The console polls GET /v1/invitations this often where no staff push reaches it.
	invitationsPollHint = 5 * time.Second
)

// Audit actions of invitations and handovers.
const (
	actionInvitationCreate = "invitation.create"
	actionInvitationRevoke = "invitation.revoke"
	actionSessionHandover  = "session.handover"
)

type createInvitation struct {
	Kind             rooms.InvitationKind `json:"kind"`
	SpecialistID     string               `json:"specialist_id,omitempty"`
	Name             string               `json:"name,omitempty"`
	Email            string               `json:"email,omitempty"`
	Phone            string               `json:"phone,omitempty"`
	ExpiresInSeconds int                  `json:"expires_in_seconds,omitempty"`
	// Language of the email or SMS that brings an expert their link (invitenotify.go).
	Language string `json:"language,omitempty"`
}

type invitationView struct {
	ID            string     `json:"id"`
	SessionID     string     `json:"session_id"`
	Kind          string     `json:"kind"`
	State         string     `json:"state"`
	SpecialistID  string     `json:"specialist_id,omitempty"`
	Name          string     `json:"name,omitempty"`
	Email         string     `json:"email,omitempty"`
	Phone         string     `json:"phone,omitempty"`
	InvitedBy     string     `json:"invited_by"`
	InvitedByName string     `json:"invited_by_name,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	AcceptedAt    *time.Time `json:"accepted_at,omitempty"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	ParticipantID string     `json:"participant_id,omitempty"`
	// URL is the expert's link, in the reply that creates it only.
	URL string `json:"url,omitempty"`
	// Notifications: where an expert's link was sent by email or SMS (invitenotify.go).
	Notifications []notificationView `json:"notifications,omitempty"`
}

type invitationList struct {
	Data []invitationView `json:"data"`
	// PollSeconds tells the console how often to look again.
	PollSeconds int `json:"poll_seconds,omitempty"`
}

func viewInvitation(inv *rooms.Invitation, now time.Time) invitationView {
	state := string(inv.State)
	if inv.State == rooms.InvitationPending && !inv.Open(now) {
		state = "expired"
	}
	return invitationView{ID: inv.ID, SessionID: inv.SessionID, Kind: string(inv.Kind), State: state,
		SpecialistID: inv.SpecialistID, Name: inv.Name, Email: inv.Email, Phone: inv.Phone,
		InvitedBy: inv.InvitedBy, InvitedByName: inv.InvitedByName, CreatedAt: inv.CreatedAt,
		ExpiresAt: inv.ExpiresAt, AcceptedAt: inv.AcceptedAt, RevokedAt: inv.RevokedAt,
		ParticipantID: inv.ParticipantID}
}

// inviter is who invites, for the record: a specialist (with their name) or the API.
func (s *Server) inviter(ctx context.Context, c caller) (id, name string) {
	if c.SpecialistID == "" {
		return "api", ""
	}
	if sp, err := s.rooms.Specialist(ctx, c.OrgID, c.SpecialistID); err == nil {
		return sp.ID, sp.Name
	}
	return c.SpecialistID, ""
}

// liveSession finds the caller's session and refuses an ended one.
func (s *Server) liveSession(w http.ResponseWriter, r *http.Request) (*rooms.Session, bool) {
	sess, err := s.rooms.Session(r.Context(), callerOf(r).OrgID, r.PathValue("id"))
	switch {
	case err != nil:
		s.roomsError(w, r, err)
		return nil, false
	case sess.State == rooms.SessionEnded:
		problem.Write(w, r, http.StatusConflict, "invalid-state", "the session has ended")
		return nil, false
	}
	return sess, true
}

func (s *Server) handleCreateInvitation(w http.ResponseWriter, r *http.Request) {
	var in createInvitation
	if !readJSON(w, r, &in) {
		return
	}
	c := callerOf(r)
	sess, ok := s.liveSession(w, r)
	if !ok {
		return
	}
	now := time.Now().UTC()
	by, byName := s.inviter(r.Context(), c)
	inv := rooms.Invitation{OrgID: sess.OrgID, SessionID: sess.ID, Kind: in.Kind, InvitedBy: by, InvitedByName: byName,
		CreatedAt: now}
	in.Name, in.Email, in.Phone = strings.TrimSpace(in.Name), strings.TrimSpace(in.Email), strings.TrimSpace(in.Phone)
	switch in.Kind {
	case rooms.InviteColleague:
		if in.Name != "" || in.Email != "" || in.Phone != "" || in.ExpiresInSeconds != 0 || in.Language != "" {
			problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "a colleague is named by specialist_id only")
			return
		}
		sp, ok := s.colleague(w, r, c, in.SpecialistID)
		if !ok {
			return
		}
		inv.SpecialistID, inv.Name, inv.ExpiresAt = sp.ID, sp.Name, now.Add(colleagueInviteTTL)
	case rooms.InviteExpert:
		ttl := defaultExpertTTL
		switch {
		case in.SpecialistID != "":
			problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "specialist_id: experts are not specialists of the organisation")
			return
		case len(in.Name) > maxInvitationNameLn:
			problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "name: at most 80 characters")
			return
		case in.Email != "" && !plainEmail(in.Email):
			problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "email: a plain address such as bea@example.com")
			return
		case in.Phone != "" && !phonePattern.MatchString(in.Phone):
			problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "phone: an E.164 number such as +33612345678")
			return
		case in.ExpiresInSeconds < 0 || time.Duration(in.ExpiresInSeconds)*time.Second > maxExpertTTL:
			problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "expires_in_seconds: 60 to 86400")
			return
		case in.ExpiresInSeconds > 0 && in.ExpiresInSeconds < 60:
			problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "expires_in_seconds: 60 to 86400")
			return
		case in.ExpiresInSeconds > 0:
			ttl = time.Duration(in.ExpiresInSeconds) * time.Second
		}
		lang, ok := expertLanguage(in.Language)
		if !ok {
			problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "language: a language tag such as en or fr-ca")
			return
		}
		inv.Name, inv.Email, inv.Phone = in.Name, in.Email, in.Phone
		token, exp, err := s.issuer.IssueLink(sess.OrgID, sess.ID, auth.RoleExpert, ttl)
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		claims, err := s.issuer.VerifyLink(token)
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		inv.TokenID, inv.ExpiresAt = claims.ID, exp.UTC()
		created, err := s.rooms.CreateInvitation(r.Context(), inv)
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		s.record(r.Context(), s.auditFromRequest(r, actionInvitationCreate, sess.ID, "expert:"+created.ID))
		out := viewInvitation(created, now)
		out.URL = s.baseURL + "/e/" + token
		if err := s.sendExpertInvitation(r.Context(), created, out.URL, lang); err != nil {
			s.log.Error("queue expert invitation", "invitation", created.ID, "err", err)
		}
		if err := s.invitationNotifications(r.Context(), created, &out); err != nil {
			s.log.Warn("expert invitation notifications", "invitation", created.ID, "err", err)
		}
		w.Header().Set("Location", "/v1/sessions/"+sess.ID+"/invitations/"+created.ID)
		writeJSON(w, http.StatusCreated, out)
		return
	default:
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "kind: colleague or expert")
		return
	}
	created, err := s.rooms.CreateInvitation(r.Context(), inv)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, actionInvitationCreate, sess.ID, "specialist:"+created.SpecialistID))
	s.tellInvited(created)
	w.Header().Set("Location", "/v1/sessions/"+sess.ID+"/invitations/"+created.ID)
	writeJSON(w, http.StatusCreated, viewInvitation(created, now))
}

func plainEmail(s string) bool {
	addr, err := mail.ParseAddress(s)
	return err == nil && addr.Address == s && len(s) <= 254
}

// colleague checks that a specialist of the caller's organisation other than the caller is named.
func (s *Server) colleague(w http.ResponseWriter, r *http.Request, c caller, id string) (*rooms.Specialist, bool) {
	if id == "" {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "specialist_id: which colleague")
		return nil, false
	}
	if id == c.SpecialistID {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "specialist_id: a colleague, not yourself")
		return nil, false
	}
	sp, err := s.rooms.Specialist(r.Context(), c.OrgID, id)
	if errors.Is(err, rooms.ErrNotFound) {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "specialist_id: no such specialist in the organisation")
		return nil, false
	}
	if err != nil {
		s.internalError(w, r, err)
		return nil, false
	}
	return sp, true
}

// tellInvited pushes the invitation to the colleague's console over the staff socket (see
// staff.go) where one is open; the console also polls GET /v1/invitations, so a console without
// one, or a lost push, costs a few seconds, not the invitation.
func (s *Server) tellInvited(inv *rooms.Invitation) {
	msg := wire.Invitation{InvitationID: inv.ID, SessionID: inv.SessionID, Kind: string(inv.Kind),
		InvitedBy: inv.InvitedBy, InvitedByName: inv.InvitedByName, ExpiresAt: inv.ExpiresAt}
	s.notifyStaff(inv.OrgID, inv.SpecialistID, wire.TypeInvitation, msg)
}

func (s *Server) handleListInvitations(w http.ResponseWriter, r *http.Request) {
	sess, err := s.rooms.Session(r.Context(), callerOf(r).OrgID, r.PathValue("id"))
	if err != nil {
		s.roomsError(w, r, err)
		return
	}
	list, err := s.rooms.SessionInvitations(r.Context(), sess.OrgID, sess.ID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	now := time.Now()
	out := invitationList{Data: make([]invitationView, 0, len(list))}
	for i := range list {
		v := viewInvitation(&list[i], now)
		if err := s.invitationNotifications(r.Context(), &list[i], &v); err != nil {
			s.log.Warn("expert invitation notifications", "invitation", list[i].ID, "err", err)
		}
		out.Data = append(out.Data, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleRevokeInvitation(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	sess, err := s.rooms.Session(r.Context(), c.OrgID, r.PathValue("id"))
	if err != nil {
		s.roomsError(w, r, err)
		return
	}
	by, _ := s.inviter(r.Context(), c)
	inv, err := s.rooms.RevokeInvitation(r.Context(), sess.OrgID, sess.ID, r.PathValue("iid"), by)
	if errors.Is(err, rooms.ErrNotFound) {
		problem.Write(w, r, http.StatusNotFound, "not-found", "no such invitation")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, actionInvitationRevoke, sess.ID, string(inv.Kind)+":"+inv.ID))
	w.WriteHeader(http.StatusNoContent)
}

// handleMyInvitations lists the open invitations addressed to the signed-in specialist; API
// keys have none.
func (s *Server) handleMyInvitations(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	out := invitationList{Data: []invitationView{}, PollSeconds: int(invitationsPollHint / time.Second)}
	if c.SpecialistID != "" {
		list, err := s.rooms.SpecialistInvitations(r.Context(), c.OrgID, c.SpecialistID)
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		now := time.Now()
		for i := range list {
			out.Data = append(out.Data, viewInvitation(&list[i], now))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleExpertPage serves the call page to an expert link that is still honoured; the link
// itself was checked by handleLinkPage.
func (s *Server) handleExpertPage(w http.ResponseWriter, r *http.Request) {
	claims, err := s.issuer.VerifyLink(r.PathValue("token"))
	if err != nil {
		webclient.ServeError(w, http.StatusUnauthorized, "This link is not valid", "Ask for a new invitation.")
		return
	}
	_, err = s.rooms.CheckExpertLink(r.Context(), claims.Org, claims.Subject, claims.ID)
	switch {
	case errors.Is(err, rooms.ErrInvitationRevoked):
		webclient.ServeError(w, http.StatusGone, "This invitation was withdrawn", "Ask the specialist for a new invitation if you still need to join.")
	case errors.Is(err, rooms.ErrInvitationExpired):
		webclient.ServeError(w, http.StatusGone, "This invitation has expired", "Ask the specialist for a new invitation.")
	case errors.Is(err, rooms.ErrNotFound):
		webclient.ServeError(w, http.StatusNotFound, "This invitation does not exist", "Ask the specialist for a new invitation.")
	case err != nil:
		s.log.Error("expert page", "err", err)
		webclient.ServeError(w, http.StatusServiceUnavailable, "Please try again", "The service is busy right now.")
	default:
		webclient.ServeCustomer(w, r)
	}
}

// admitExpert checks an expert link at join: its invitation must be open. It names the expert
// as invited when they give no name.
func (p *participant) admitExpert(ctx context.Context, claims *auth.Claims, req *rooms.JoinRequest) *wire.Error {
	if claims.Role != auth.RoleExpert {
		return nil
	}
	inv, err := p.srv.rooms.CheckExpertLink(ctx, claims.Org, claims.Subject, claims.ID)
	switch {
	case errors.Is(err, rooms.ErrInvitationRevoked), errors.Is(err, rooms.ErrInvitationExpired):
		return wire.Errorf(wire.CodeForbidden, "%v", err)
	case errors.Is(err, rooms.ErrNotFound):
		return wire.Errorf(wire.CodeForbidden, "no invitation for this link")
	case err != nil:
		p.log.Error("expert invitation", "err", err)
		return wire.Errorf(wire.CodeInternal, "cannot check the invitation now")
	}
	if req.Name == "" {
		req.Name = inv.Name
	}
	return nil
}

// acceptInvitations marks the invitations that this participant's joining answers.
func (p *participant) acceptInvitations(ctx context.Context) {
	var specialistID, tokenID string
	switch {
	case p.role == rooms.RoleSpecialist && strings.HasPrefix(p.key, "specialist:"):
		specialistID = strings.TrimPrefix(p.key, "specialist:")
	case p.role == rooms.RoleExpert:
		tokenID = strings.TrimPrefix(p.key, "link:")
	default:
		return
	}
	accepted, err := p.srv.rooms.AcceptInvitations(ctx, p.orgID, p.sessionID, specialistID, tokenID, p.id)
	if err != nil {
		p.log.Warn("accept invitations", "err", err)
	}
	for _, inv := range accepted {
		p.log.Info("invitation accepted", "invitation", inv.ID, "kind", inv.Kind)
	}
}
