package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Appointment states.
const (
	AppointmentBooked    = "booked"
	AppointmentCancelled = "cancelled"
)

const bucketAppointments = "assist_appointments"

// Customer is who an appointment is booked for.
type Customer struct {
	Name     string `json:"name"`
	Phone    string `json:"phone,omitempty"`
	Email    string `json:"email,omitempty"`
	Language string `json:"language,omitempty"`
}

// Appointment is a session booked for a time window.
type Appointment struct {
	ID           string    `json:"id"`
	OrgID        string    `json:"org_id"`
	State        string    `json:"state"`
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	Customer     Customer  `json:"customer"`
	SpecialistID string    `json:"specialist_id,omitempty"`
	Queue        string    `json:"queue,omitempty"`
	SessionID    string    `json:"session_id"`
	Revision     int       `json:"revision"` // counts reschedules and reassignments
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	// RemindedRevision is the Revision whose reminder has been queued (0: none yet). A reschedule
	// or reassignment counts a new revision, which may need a reminder of its own.
	RemindedRevision int `json:"reminded_revision,omitempty"`
}

// ReminderDue says when the appointment's reminder is due, lead before its start, and whether
// it needs one at all. It needs one when it is booked, its current revision has not been
// reminded, and it was booked or last changed before the reminder was due: an appointment
// booked or moved inside the lead time has just been sent its link and gets no reminder.
func (a *Appointment) ReminderDue(lead time.Duration) (time.Time, bool) {
	at := a.Start.Add(-lead)
	if lead <= 0 || a.State != AppointmentBooked || a.RemindedRevision == a.Revision || !a.UpdatedAt.Before(at) {
		return time.Time{}, false
	}
	return at, true
}

// MarkReminded records that the reminder of the appointment's revision has been queued, with a
// compare-and-set on its record. It reports false, and changes nothing, when the appointment is
// no longer booked at that revision (it was rescheduled or cancelled meanwhile) or was marked
// already: whoever marks it first wins.
func (s *Store) MarkReminded(ctx context.Context, orgID, id string, revision int) (bool, error) {
	errStale := errors.New("stale")
	_, err := updateJSON(ctx, s, s.appointments, orgID, id, func(a *Appointment) error {
		if a.State != AppointmentBooked || a.Revision != revision || a.RemindedRevision == revision {
			return errStale
		}
		a.RemindedRevision = revision
		return nil
	})
	if errors.Is(err, errStale) {
		return false, nil
	}
	return err == nil, err
}

// AppointmentUpdate is one appointment seen by WatchAppointments.
type AppointmentUpdate struct {
	Key         string       // {org}.{id}
	Appointment *Appointment // nil: the record was deleted
	CaughtUp    bool         // no appointment: every one stored when the watch began has been sent
}

// WatchAppointments sends every stored appointment of every organisation, then a CaughtUp
// update, then each change as it is made on any node, until ctx ends; the channel is then
// closed. It closes early if the watch fails (NATS gone for good).
func (s *Store) WatchAppointments(ctx context.Context) (<-chan AppointmentUpdate, error) {
	w, err := s.appointments.WatchAll(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan AppointmentUpdate)
	go func() {
		defer close(out)
		defer func() { _ = w.Stop() }()
		for {
			var u AppointmentUpdate
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				switch {
				case e == nil:
					u.CaughtUp = true
				case e.Operation() != jetstream.KeyValuePut:
					u.Key = e.Key()
				default:
					var a Appointment
					if err := json.Unmarshal(e.Value(), &a); err != nil {
						s.log.Warn("corrupt appointment record", "key", e.Key(), "err", err)
						continue
					}
					u.Key, u.Appointment = e.Key(), &a
				}
			}
			select {
			case out <- u:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// AppointmentFilter narrows a listing.
type AppointmentFilter struct {
	State        string
	SpecialistID string
	From, To     time.Time // appointments that start in [From, To)
	Limit        int
	After        string // id of the last appointment of the previous page
}

// BookAppointment creates the appointment and the session its link opens; the session's link
// window is the appointment's, widened by grace on both sides.
func (s *Store) BookAppointment(ctx context.Context, a Appointment, grace time.Duration) (*Appointment, *Session, error) {
	now := s.now().UTC()
	a.ID, a.State, a.CreatedAt, a.UpdatedAt, a.Revision = newID("apt_"), AppointmentBooked, now, now, 1
	sess := &Session{ID: newID("ses_"), OrgID: a.OrgID, State: SessionWaiting, CreatedAt: now,
		Participants: []Participant{}, AppointmentID: a.ID}
	sess.setWindow(a.Start, a.End, grace)
	a.SessionID = sess.ID
	if err := createJSON(ctx, s.sessions, sessionKey(a.OrgID, sess.ID), sess); err != nil {
		return nil, nil, err
	}
	if err := createJSON(ctx, s.appointments, sessionKey(a.OrgID, a.ID), &a); err != nil {
		return nil, nil, err
	}
	s.publish(ctx, Event{Kind: EventCreated, OrgID: a.OrgID, SessionID: sess.ID})
	return &a, sess, nil
}

func (sess *Session) setWindow(start, end time.Time, grace time.Duration) {
	opens, closes := start.Add(-grace).UTC(), end.Add(grace).UTC()
	sess.OpensAt, sess.ClosesAt = &opens, &closes
}

// Appointment reads one appointment of an organisation.
func (s *Store) Appointment(ctx context.Context, orgID, id string) (*Appointment, error) {
	if !ValidID(orgID) || !ValidID(id) {
		return nil, ErrNotFound
	}
	a, _, err := getJSON[Appointment](ctx, s.appointments, sessionKey(orgID, id))
	return a, err
}

// AppointmentChange is a reschedule or a reassignment; nil fields stay as they are.
type AppointmentChange struct {
	Start, End   *time.Time
	SpecialistID *string
	Queue        *string
	Customer     *Customer
}

// UpdateAppointment reschedules or reassigns a booked appointment and moves its session's
// link window with it.
func (s *Store) UpdateAppointment(ctx context.Context, orgID, id string, ch AppointmentChange, grace time.Duration) (*Appointment, error) {
	a, err := updateJSON(ctx, s, s.appointments, orgID, id, func(a *Appointment) error {
		if a.State != AppointmentBooked {
			return fmt.Errorf("%w: the appointment is %s", ErrInvalidState, a.State)
		}
		if ch.Start != nil {
			a.Start = ch.Start.UTC()
		}
		if ch.End != nil {
			a.End = ch.End.UTC()
		}
		if !a.End.After(a.Start) {
			return fmt.Errorf("%w: end must be after start", ErrInvalidState)
		}
		if ch.SpecialistID != nil {
			a.SpecialistID = *ch.SpecialistID
		}
		if ch.Queue != nil {
			a.Queue = *ch.Queue
		}
		if ch.Customer != nil {
			a.Customer = *ch.Customer
		}
		a.Revision++
		a.UpdatedAt = s.now().UTC()
		return nil
	})
	if err != nil {
		return nil, err
	}
	_, err = s.update(ctx, orgID, a.SessionID, func(sess *Session) error {
		sess.setWindow(a.Start, a.End, grace)
		return nil
	})
	return a, err
}

// CancelAppointment cancels a booked appointment and ends its session, so its link shows that
// it was cancelled.
func (s *Store) CancelAppointment(ctx context.Context, orgID, id, by string) (*Appointment, error) {
	a, err := updateJSON(ctx, s, s.appointments, orgID, id, func(a *Appointment) error {
		if a.State != AppointmentBooked {
			return fmt.Errorf("%w: the appointment is %s", ErrInvalidState, a.State)
		}
		a.State, a.UpdatedAt = AppointmentCancelled, s.now().UTC()
		a.Revision++
		return nil
	})
	if err != nil {
		return nil, err
	}
	_, err = s.End(ctx, orgID, a.SessionID, ReasonCancelled, by)
	return a, err
}

// ReasonCancelled ends the session of a cancelled appointment.
const ReasonCancelled = "the appointment was cancelled"

// ListAppointments pages through an organisation's appointments by start time.
func (s *Store) ListAppointments(ctx context.Context, orgID string, f AppointmentFilter) ([]Appointment, bool, error) {
	if !ValidID(orgID) {
		return nil, false, nil
	}
	lister, err := s.appointments.ListKeysFiltered(ctx, orgID+".*")
	if err != nil {
		return nil, false, err
	}
	var all []Appointment
	for key := range lister.Keys() {
		a, _, err := getJSON[Appointment](ctx, s.appointments, key)
		if err != nil {
			continue
		}
		if (f.State == "" || a.State == f.State) && (f.SpecialistID == "" || a.SpecialistID == f.SpecialistID) &&
			(f.From.IsZero() || !a.Start.Before(f.From)) && (f.To.IsZero() || a.Start.Before(f.To)) {
			all = append(all, *a)
		}
	}
	_ = lister.Stop()
	slices.SortFunc(all, func(a, b Appointment) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if f.After != "" {
		i := slices.IndexFunc(all, func(a Appointment) bool { return a.ID == f.After })
		if i < 0 {
			return nil, false, fmt.Errorf("%w: unknown cursor", ErrNotFound)
		}
		all = all[i+1:]
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 20
	}
	more := len(all) > limit
	return all[:min(limit, len(all))], more, nil
}

// RevokeLinks makes every link of a session issued before now invalid.
func (s *Store) RevokeLinks(ctx context.Context, orgID, sessionID string) (*Session, error) {
	return s.update(ctx, orgID, sessionID, func(sess *Session) error {
		if sess.State == SessionEnded {
			return ErrEnded
		}
		t := s.now().UTC().Truncate(time.Second)
		sess.LinksValidFrom = &t
		return nil
	})
}

// LinkOpen says whether a link issued at issuedAt opens the session at now, and if not, why.
func (sess *Session) LinkOpen(issuedAt, now time.Time) error {
	switch {
	case sess.State == SessionEnded:
		return ErrEnded
	case sess.LinksValidFrom != nil && issuedAt.Before(*sess.LinksValidFrom):
		return ErrLinkRevoked
	case sess.OpensAt != nil && now.Before(*sess.OpensAt):
		return ErrTooEarly
	case sess.ClosesAt != nil && now.After(*sess.ClosesAt):
		return ErrTooLate
	}
	return nil
}

// Link window errors.
var (
	ErrLinkRevoked = errors.New("this link was replaced by a newer one")
	ErrTooEarly    = errors.New("the appointment has not started yet")
	ErrTooLate     = errors.New("the appointment is over")
)

func updateJSON[T any](ctx context.Context, s *Store, kv jetstream.KeyValue, orgID, id string, change func(*T) error) (*T, error) {
	if !ValidID(orgID) || !ValidID(id) {
		return nil, ErrNotFound
	}
	return casUpdate(ctx, kv, sessionKey(orgID, id), change)
}
