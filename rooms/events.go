package rooms

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// EventKind names what happened in a session.
type EventKind string

// Event kinds.
const (
	EventCreated  EventKind = "created"
	EventWaiting  EventKind = "waiting"
	EventAdmitted EventKind = "admitted"
	EventDenied   EventKind = "denied"
	EventJoined   EventKind = "joined"
	EventLeft     EventKind = "left"
	EventEnded    EventKind = "ended"
)

// Event is one change in a session, published on NATS and kept in JetStream.
type Event struct {
	ID            string    `json:"id"`
	Kind          EventKind `json:"kind"`
	OrgID         string    `json:"org_id"`
	SessionID     string    `json:"session_id"`
	ParticipantID string    `json:"participant_id,omitempty"`
	Actor         string    `json:"actor,omitempty"`
	Reason        string    `json:"reason,omitempty"`
	Time          time.Time `json:"time"`
}

// EventSubject is where a session's events of a kind are published.
func EventSubject(orgID, sessionID string, kind EventKind) string {
	return fmt.Sprintf("%s.%s.%s.%s", eventsSubjectRoot, orgID, sessionID, kind)
}

// publish sends an event durably. The state change it reports is already stored, so a failed
// publish is logged, not returned: listeners re-read the state on the next event anyway.
func (s *Store) publish(ctx context.Context, ev Event) {
	ev.ID = newID("evt_")
	ev.Time = s.now().UTC()
	data, err := json.Marshal(ev)
	if err != nil {
		s.log.Error("encode event", "err", err)
		return
	}
	if _, err := s.bus.JS.Publish(ctx, EventSubject(ev.OrgID, ev.SessionID, ev.Kind), data); err != nil {
		s.log.Warn("publish event", "kind", ev.Kind, "session", ev.SessionID, "err", err)
	}
}

// Watch delivers the events of one session as they happen, from any node, until ctx ends or
// the returned stop is called. The channel is never closed while the subscription lives;
// events that arrive while the consumer is behind are dropped: the state in KV is the truth and
// an event only says "look again", which the events still queued say too.
func (s *Store) Watch(orgID, sessionID string) (<-chan Event, func(), error) {
	ch := make(chan Event, 16)
	sub, err := s.bus.Conn.Subscribe(fmt.Sprintf("%s.%s.%s.>", eventsSubjectRoot, orgID, sessionID), func(m *nats.Msg) {
		var ev Event
		if json.Unmarshal(m.Data, &ev) != nil {
			return
		}
		select {
		case ch <- ev:
		default:
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return ch, func() { _ = sub.Unsubscribe() }, nil
}
