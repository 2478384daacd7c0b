package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/rooms/webhooks"
	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/problem"
	"github.com/assist-video/assist/signaling/wire"
)

// Emergencies. A specialist flags a session (the emergency socket message, or
// POST /v1/sessions/{id}/emergency). Everyone in the call is told (an emergency entry in the
// timeline) and the customer is asked for their location (a geolocation_request: the
// browser asks them to allow it); while flagged, the customer's page keeps sending its
// position. The organisation's dispatch receiver (policy.dispatch_webhook_id, one of its
// webhook endpoints) gets a session.emergency event at once with the session, the latest
// location and the timeline, then one per location update and one when the flag is cleared.
// The events go through the durable webhook queue, signed like every webhook; endpoints
// subscribed to session.emergency get them too (once each).

// Audit actions of emergencies.
const (
	actionEmergencyFlag  = "session.emergency_flag"
	actionEmergencyClear = "session.emergency_clear"
)

// maxDispatchBytes keeps the first dispatch event under the webhook size limit: the oldest
// timeline entries are left out first.
const maxDispatchBytes = 56 << 10

// emergencyView is a session's emergency flag as the API shows it.
type emergencyView struct {
	SessionID string          `json:"session_id"`
	Active    bool            `json:"active"`
	Reason    string          `json:"reason,omitempty"`
	FlaggedBy string          `json:"flagged_by,omitempty"`
	FlaggedAt *time.Time      `json:"flagged_at,omitempty"`
	ClearedAt *time.Time      `json:"cleared_at,omitempty"`
	Location  *rooms.Location `json:"location,omitempty"`
	Updates   int             `json:"updates"`
}

func viewEmergency(e *rooms.Emergency) emergencyView {
	v := emergencyView{SessionID: e.SessionID, Active: e.Active, Reason: e.Reason, FlaggedBy: e.FlaggedBy,
		ClearedAt: e.ClearedAt, Location: e.Location, Updates: e.Updates}
	if !e.FlaggedAt.IsZero() {
		v.FlaggedAt = &e.FlaggedAt
	}
	return v
}

// dispatchEvent is the data of a session.emergency webhook.
type dispatchEvent struct {
	// Kind is "flagged" (with the session and its timeline), "location" or "cleared".
	Kind      string          `json:"kind"`
	SessionID string          `json:"session_id"`
	Emergency emergencyView   `json:"emergency"`
	Location  *rooms.Location `json:"location,omitempty"`
	Session   *api.Session    `json:"session,omitempty"`
	Timeline  []wire.Envelope `json:"timeline,omitempty"`
}

// emergency handles a specialist's flag from the socket.
func (p *participant) emergency(ctx context.Context, m *wire.EmergencySend) *wire.Error {
	if p.role != rooms.RoleSpecialist {
		return wire.Errorf(wire.CodeForbidden, "only a specialist can flag an emergency")
	}
	if p.state != rooms.ParticipantInCall {
		return wire.Errorf(wire.CodeInvalidState, "join the call first")
	}
	sender := wire.Sender{ParticipantID: p.id, Role: string(p.role), Name: p.name}
	_, werr := p.srv.setEmergency(ctx, p.orgID, p.sessionID, m.Active, m.Reason, sender,
		p.auditEvent(map[bool]string{true: actionEmergencyFlag, false: actionEmergencyClear}[m.Active], ""))
	return werr
}

// setEmergency flags or clears a session's emergency; on a change it tells the call, asks the
// customer for their location and tells the dispatch receiver.
func (s *Server) setEmergency(ctx context.Context, orgID, sessionID string, active bool, reason string, by wire.Sender, ev audit.Event) (*rooms.Emergency, *wire.Error) {
	e, changed, err := s.rooms.SetEmergency(ctx, orgID, sessionID, active, reason, by.ParticipantID)
	if err != nil {
		s.log.Error("emergency", "session", sessionID, "err", err)
		return nil, wire.Errorf(wire.CodeInternal, "the emergency could not be recorded")
	}
	if !changed {
		return e, nil
	}
	meta := wire.Meta{ID: newMessageID(), Time: time.Now().UTC(), From: by}
	if werr := s.publishTool(ctx, orgID, sessionID, wire.TypeEmergency,
		wire.Emergency{Meta: meta, EmergencySend: wire.EmergencySend{Active: active, Reason: e.Reason}}, true); werr != nil {
		return nil, werr
	}
	if active {
		req := wire.Request{Meta: wire.Meta{ID: newMessageID(), Time: time.Now().UTC(), From: by}}
		if werr := s.publishTool(ctx, orgID, sessionID, wire.TypeGeolocationRequest, req, true); werr != nil {
			return nil, werr
		}
	}
	s.record(ctx, ev)
	kind := "cleared"
	if active {
		kind = "flagged"
	}
	snapshot := *e
	s.workers.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.dispatch(ctx, kind, &snapshot)
	})
	return e, nil
}

// emergencyLocation passes a customer's location on while the session is flagged.
func (p *participant) emergencyLocation(ctx context.Context, g *wire.GeolocationSend) {
	if g.Declined || p.role != rooms.RoleCustomer {
		return
	}
	e, flagged, err := p.srv.rooms.EmergencyLocation(ctx, p.orgID, p.sessionID, rooms.Location{Latitude: g.Latitude,
		Longitude: g.Longitude, Accuracy: g.Accuracy, Timestamp: g.Timestamp})
	if err != nil {
		p.log.Warn("emergency location", "err", err)
		return
	}
	if flagged {
		p.srv.dispatch(ctx, "location", e)
	}
}

// dispatch tells the organisation's dispatch receiver, and endpoints subscribed to
// session.emergency, about the emergency. Failures are logged: the webhook queue retries
// what it has stored, and the next update carries the latest location again.
func (s *Server) dispatch(ctx context.Context, kind string, e *rooms.Emergency) {
	log := s.log.With("session", e.SessionID, "emergency", kind)
	data := dispatchEvent{Kind: kind, SessionID: e.SessionID, Emergency: viewEmergency(e), Location: e.Location}
	id := fmt.Sprintf("emg.%s.%s.%d", e.SessionID, kind, e.FlaggedAt.UnixNano())
	switch kind {
	case "location":
		id = fmt.Sprintf("emg.%s.location.%d.%d", e.SessionID, e.FlaggedAt.UnixNano(), e.Updates)
	case "cleared":
		if e.ClearedAt != nil {
			id = fmt.Sprintf("emg.%s.cleared.%d", e.SessionID, e.ClearedAt.UnixNano())
		}
	case "flagged":
		sess, err := s.rooms.Session(ctx, e.OrgID, e.SessionID)
		if err != nil {
			log.Error("dispatch: session", "err", err)
			return
		}
		view := s.sessionView(sess)
		data.Session = &view
		entries, err := s.rooms.Timeline(ctx, e.OrgID, e.SessionID)
		if err != nil {
			log.Error("dispatch: timeline", "err", err)
		}
		for _, frame := range entries {
			var env wire.Envelope
			if json.Unmarshal(frame, &env) == nil {
				data.Timeline = append(data.Timeline, s.freshURLs(env))
			}
		}
	}
	raw, err := json.Marshal(data)
	for err == nil && len(raw) > maxDispatchBytes && len(data.Timeline) > 0 {
		data.Timeline = data.Timeline[max(1, len(data.Timeline)/4):]
		raw, err = json.Marshal(data)
	}
	if err != nil {
		log.Error("dispatch: encode", "err", err)
		return
	}
	ev := webhooks.Event{ID: id, OrgID: e.OrgID, Type: webhooks.TypeSessionEmergency, Time: time.Now().UTC(), Data: raw}
	if org, err := s.rooms.Organization(ctx, e.OrgID); err == nil && org.Policy.DispatchWebhookID != "" {
		if err := s.webhooks.PublishTo(ctx, ev, org.Policy.DispatchWebhookID); err != nil {
			log.Error("dispatch", "webhook", org.Policy.DispatchWebhookID, "err", err)
		}
	}
	if err := s.webhooks.Publish(ctx, ev); err != nil {
		log.Warn("emergency webhook", "err", err)
	}
}

// ---- routes ----

type emergencyRequest struct {
	Active *bool  `json:"active"`
	Reason string `json:"reason"`
}

func (s *Server) handleSetEmergency(w http.ResponseWriter, r *http.Request) {
	var in emergencyRequest
	if !readJSON(w, r, &in) {
		return
	}
	if in.Active == nil {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "active: true flags the emergency, false clears it")
		return
	}
	if len(in.Reason) > 200 {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "reason: at most 200 bytes")
		return
	}
	c := callerOf(r)
	sess, err := s.rooms.Session(r.Context(), c.OrgID, r.PathValue("id"))
	if err != nil {
		s.roomsError(w, r, err)
		return
	}
	if *in.Active && sess.State == rooms.SessionEnded {
		problem.Write(w, r, http.StatusConflict, "invalid-state", "the session has ended")
		return
	}
	by := wire.Sender{ParticipantID: actorName(c), Role: string(rooms.RoleSpecialist), Name: "API"}
	if c.SpecialistID != "" {
		if sp, err := s.rooms.Specialist(r.Context(), c.OrgID, c.SpecialistID); err == nil {
			by.Name = sp.Name
		}
	}
	action := actionEmergencyClear
	if *in.Active {
		action = actionEmergencyFlag
	}
	e, werr := s.setEmergency(r.Context(), c.OrgID, sess.ID, *in.Active, strings.TrimSpace(in.Reason), by,
		s.auditFromRequest(r, action, sess.ID, ""))
	if werr != nil {
		problem.Write(w, r, http.StatusServiceUnavailable, "unavailable", werr.Message)
		return
	}
	writeJSON(w, http.StatusOK, viewEmergency(e))
}

func (s *Server) handleGetEmergency(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	sess, err := s.rooms.Session(r.Context(), c.OrgID, r.PathValue("id"))
	if err != nil {
		s.roomsError(w, r, err)
		return
	}
	e, err := s.rooms.Emergency(r.Context(), c.OrgID, sess.ID)
	if errors.Is(err, rooms.ErrNotFound) {
		e, err = &rooms.Emergency{OrgID: c.OrgID, SessionID: sess.ID}, nil
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewEmergency(e))
}

// checkDispatchWebhook refuses a dispatch receiver that is not one of the organisation's
// webhook endpoints.
func (s *Server) checkDispatchWebhook(w http.ResponseWriter, r *http.Request, orgID string, id *string) bool {
	if id == nil || strings.TrimSpace(*id) == "" {
		return true
	}
	if _, err := s.webhooks.Get(r.Context(), orgID, strings.TrimSpace(*id)); err != nil {
		if errors.Is(err, webhooks.ErrNotFound) {
			problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "dispatch_webhook_id: no such webhook endpoint in this organisation")
			return false
		}
		s.internalError(w, r, err)
		return false
	}
	return true
}
