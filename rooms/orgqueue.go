package rooms

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// The organisation's queue as the specialists' consoles show it: the QueueWatch's view (see
// queue.go) with who waits where, plus transfers of a waiting customer's session to a named
// specialist.

// WaitingCustomer is one queued customer of an organisation.
type WaitingCustomer struct {
	Position      int
	SessionID     string
	Participant   Participant
	AppointmentID string
	AssignedTo    string
}

// Waiting lists everyone queued in the organisation, by place in the line.
func (q *QueueSnapshot) Waiting() []WaitingCustomer {
	if q == nil {
		return nil
	}
	out := make([]WaitingCustomer, 0, len(q.order))
	for i, c := range q.order {
		w := WaitingCustomer{Position: i + 1}
		if c.sess != nil {
			w.SessionID, w.AppointmentID, w.AssignedTo = c.sess.ID, c.sess.AppointmentID, c.sess.AssignedTo
			if p, ok := c.sess.Participant(c.id); ok {
				w.Participant = *p
			}
		}
		if w.Participant.ID == "" {
			w.Participant = Participant{ID: c.id, Role: RoleCustomer, JoinedAt: c.since}
		}
		out = append(out, w)
	}
	return out
}

// Event kind of a transfer.
const EventAssigned EventKind = "assigned"

// Transfer assigns a session whose customer is waiting to a specialist (by): the customer keeps
// waiting, undisturbed; the specialist sees the session first in their queue.
func (s *Store) Transfer(ctx context.Context, orgID, sessionID, specialistID, by string) (*Session, error) {
	if !ValidID(specialistID) {
		return nil, ErrNotFound
	}
	sess, err := s.update(ctx, orgID, sessionID, func(sess *Session) error {
		if sess.State == SessionEnded {
			return ErrEnded
		}
		if len(sess.Waiting()) == 0 {
			return fmt.Errorf("%w: nobody is waiting in the session", ErrInvalidState)
		}
		now := s.now().UTC()
		sess.AssignedTo, sess.AssignedBy, sess.AssignedAt = specialistID, by, &now
		return nil
	})
	if err == nil {
		s.publish(ctx, Event{Kind: EventAssigned, OrgID: orgID, SessionID: sessionID, Actor: by, ParticipantID: specialistID})
	}
	return sess, err
}

// SetDiagnostics records the verdict of a participant's device check.
func (s *Store) SetDiagnostics(ctx context.Context, orgID, sessionID, participantID, verdict string) error {
	_, err := s.update(ctx, orgID, sessionID, func(sess *Session) error {
		p, ok := sess.Participant(participantID)
		if !ok {
			return ErrNotFound
		}
		p.Diagnostics = verdict
		return nil
	})
	return err
}

// QueueNow reads an organisation's queue once, from its sessions (for the API; the consoles
// follow the live view).
func (s *Store) QueueNow(ctx context.Context, orgID string) (*QueueSnapshot, error) {
	if !ValidID(orgID) {
		return nil, ErrNotFound
	}
	state := newQueueState(orgID)
	lister, err := s.sessions.ListKeysFiltered(ctx, orgID+".*")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return state.snapshot(), nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		sess, _, err := getJSON[Session](ctx, s.sessions, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		state.apply(sess.ID, sess)
	}
	return state.snapshot(), nil
}
