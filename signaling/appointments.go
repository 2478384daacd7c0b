package signaling

import (
	"context"
	"errors"
	"net/http"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/notify"
	"github.com/assist-video/assist/rooms/webhooks"
	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/problem"
)

var (
	phonePattern    = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`) // E.164
	languagePattern = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)
)

const maxAppointmentLength = 8 * time.Hour

func validateCustomer(c api.Customer) string {
	switch {
	case strings.TrimSpace(c.Name) == "" || len(c.Name) > 80:
		return "customer.name: 1 to 80 characters"
	case c.Phone == "" && c.Email == "":
		return "customer: a phone or an email is needed to send the link"
	case c.Phone != "" && !phonePattern.MatchString(c.Phone):
		return "customer.phone: an E.164 number such as +4915112345678"
	case c.Language != "" && !languagePattern.MatchString(c.Language):
		return "customer.language: a language tag such as en or fr-CA"
	}
	if c.Email != "" {
		if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email {
			return "customer.email: not an email address"
		}
	}
	return ""
}

func validateWindow(start, end time.Time) string {
	switch {
	case start.IsZero() || end.IsZero():
		return "start and end are required (RFC 3339 times)"
	case !end.After(start):
		return "end must be after start"
	case end.Sub(start) > maxAppointmentLength:
		return "an appointment lasts at most 8h"
	case end.Before(time.Now()):
		return "the appointment is already over"
	}
	return ""
}

func (s *Server) handleCreateAppointment(w http.ResponseWriter, r *http.Request) {
	var in api.CreateAppointment
	if !readJSON(w, r, &in) {
		return
	}
	if msg := validateWindow(in.Start, in.End) + validateCustomer(in.Customer); msg != "" {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-appointment", msg)
		return
	}
	c := callerOf(r)
	if in.SpecialistID != "" {
		if _, err := s.rooms.Specialist(r.Context(), c.OrgID, in.SpecialistID); err != nil {
			problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-appointment", "specialist_id: no such specialist")
			return
		}
	}
	a, sess, err := s.rooms.BookAppointment(r.Context(), rooms.Appointment{
		OrgID: c.OrgID, Start: in.Start.UTC(), End: in.End.UTC(), SpecialistID: in.SpecialistID, Queue: in.Queue,
		Customer: rooms.Customer(in.Customer),
	}, s.cfg.AppointmentGrace)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	out := appointmentView(a)
	if out.CustomerURL, err = s.link(sess, auth.RoleCustomer); err == nil {
		out.SpecialistURL, err = s.link(sess, auth.RoleSpecialist)
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.publishWebhook(r.Context(), c.OrgID, webhooks.TypeAppointmentBooked, a.ID+".booked", out)
	s.notifyCustomer(r.Context(), a, notify.KindBooked, out.CustomerURL)
	if out.Notifications, err = s.notificationsOf(r.Context(), a); err != nil {
		s.internalError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/appointments/"+a.ID)
	writeJSON(w, http.StatusCreated, out)
}

func appointmentView(a *rooms.Appointment) api.Appointment {
	return api.Appointment{ID: a.ID, OrganizationID: a.OrgID, State: a.State, Start: a.Start, End: a.End,
		Customer: api.Customer(a.Customer), SpecialistID: a.SpecialistID, Queue: a.Queue, SessionID: a.SessionID,
		Revision: a.Revision, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

func (s *Server) handleGetAppointment(w http.ResponseWriter, r *http.Request) {
	a, err := s.rooms.Appointment(r.Context(), callerOf(r).OrgID, r.PathValue("id"))
	if err != nil {
		s.appointmentError(w, r, err)
		return
	}
	s.writeAppointment(w, r, a, http.StatusOK)
}

// writeAppointment answers with the appointment and the delivery state of its notifications.
func (s *Server) writeAppointment(w http.ResponseWriter, r *http.Request, a *rooms.Appointment, status int) {
	out := appointmentView(a)
	var err error
	if out.Notifications, err = s.notificationsOf(r.Context(), a); err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSONTagged(w, r, status, out)
}

// notificationsOf is the delivery state of every notification about the appointment.
func (s *Server) notificationsOf(ctx context.Context, a *rooms.Appointment) ([]api.Notification, error) {
	statuses, err := s.notifier.Statuses(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	out := []api.Notification{}
	for _, st := range statuses {
		if st.OrgID != a.OrgID {
			continue
		}
		out = append(out, api.Notification{ID: st.ID, Channel: string(st.Channel),
			Kind: string(st.Kind), To: st.To, State: string(st.State), Attempts: st.Attempts,
			LastError: st.LastError, UpdatedAt: st.UpdatedAt})
	}
	return out, nil
}

func (s *Server) handleListAppointments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := rooms.AppointmentFilter{State: q.Get("state"), SpecialistID: q.Get("specialist_id"), After: q.Get("starting_after"), Limit: 20}
	if f.State != "" && f.State != api.AppointmentBooked && f.State != api.AppointmentCancelled {
		problem.Write(w, r, http.StatusBadRequest, "bad-parameter", "state: booked or cancelled")
		return
	}
	for name, dst := range map[string]*time.Time{"from": &f.From, "to": &f.To} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				problem.Write(w, r, http.StatusBadRequest, "bad-parameter", name+": an RFC 3339 time")
				return
			}
			*dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			problem.Write(w, r, http.StatusBadRequest, "bad-parameter", "limit must be a whole number from 1 to 100")
			return
		}
		f.Limit = n
	}
	list, more, err := s.rooms.ListAppointments(r.Context(), callerOf(r).OrgID, f)
	if errors.Is(err, rooms.ErrNotFound) {
		problem.Write(w, r, http.StatusBadRequest, "bad-parameter", "starting_after: unknown cursor")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	out := api.AppointmentList{Data: make([]api.Appointment, 0, len(list)), HasMore: more}
	for i := range list {
		out.Data = append(out.Data, appointmentView(&list[i]))
	}
	if more {
		out.NextCursor = list[len(list)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleUpdateAppointment(w http.ResponseWriter, r *http.Request) {
	var in api.UpdateAppointment
	if !readJSON(w, r, &in) {
		return
	}
	c := callerOf(r)
	if in.Start != nil || in.End != nil {
		cur, err := s.rooms.Appointment(r.Context(), c.OrgID, r.PathValue("id"))
		if err != nil {
			s.appointmentError(w, r, err)
			return
		}
		start, end := cur.Start, cur.End
		if in.Start != nil {
			start = *in.Start
		}
		if in.End != nil {
			end = *in.End
		}
		if msg := validateWindow(start, end); msg != "" {
			problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-appointment", msg)
			return
		}
	}
	if in.Customer != nil {
		if msg := validateCustomer(*in.Customer); msg != "" {
			problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-appointment", msg)
			return
		}
	}
	if in.SpecialistID != nil && *in.SpecialistID != "" {
		if _, err := s.rooms.Specialist(r.Context(), c.OrgID, *in.SpecialistID); err != nil {
			problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-appointment", "specialist_id: no such specialist")
			return
		}
	}
	ch := rooms.AppointmentChange{Start: in.Start, End: in.End, SpecialistID: in.SpecialistID, Queue: in.Queue}
	if in.Customer != nil {
		cust := rooms.Customer(*in.Customer)
		ch.Customer = &cust
	}
	a, err := s.rooms.UpdateAppointment(r.Context(), c.OrgID, r.PathValue("id"), ch, s.cfg.AppointmentGrace)
	if err != nil {
		s.appointmentError(w, r, err)
		return
	}
	if in.Start != nil || in.End != nil {
		// The old link stays valid (its window moved with the appointment); send a fresh one.
		if sess, err := s.rooms.Session(r.Context(), c.OrgID, a.SessionID); err == nil {
			if link, err := s.link(sess, auth.RoleCustomer); err == nil {
				s.notifyCustomer(r.Context(), a, notify.KindRescheduled, link)
			}
		}
	}
	s.writeAppointment(w, r, a, http.StatusOK)
}

func (s *Server) handleCancelAppointment(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	a, err := s.rooms.CancelAppointment(r.Context(), c.OrgID, r.PathValue("id"), c.actor())
	if err != nil {
		s.appointmentError(w, r, err)
		return
	}
	s.closeSessionMedia(a.OrgID, a.SessionID)
	s.publishWebhook(r.Context(), c.OrgID, webhooks.TypeAppointmentCancelled, a.ID+".cancelled", appointmentView(a))
	s.notifyCustomer(r.Context(), a, notify.KindCancelled, "")
	s.writeAppointment(w, r, a, http.StatusOK)
}

// handleNewLinks revokes a session's links and issues new ones.
func (s *Server) handleNewLinks(w http.ResponseWriter, r *http.Request) {
	sess, err := s.rooms.RevokeLinks(r.Context(), callerOf(r).OrgID, r.PathValue("id"))
	if err != nil {
		s.roomsError(w, r, err)
		return
	}
	var out api.Links
	if out.CustomerURL, err = s.link(sess, auth.RoleCustomer); err == nil {
		out.SpecialistURL, err = s.link(sess, auth.RoleSpecialist)
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) appointmentError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, rooms.ErrNotFound) {
		problem.Write(w, r, http.StatusNotFound, "not-found", "no such appointment")
		return
	}
	s.roomsError(w, r, err)
}

func (c caller) actor() string {
	if c.SpecialistID != "" {
		return c.SpecialistID
	}
	return "api"
}
