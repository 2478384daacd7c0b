package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// PublishTo queues a delivery of ev to one endpoint of its organisation, whatever event types
// that endpoint subscribes to: an organisation's emergency dispatch receiver is named in its
// settings, not by subscription. The delivery is the same as Publish's (signed, durable, first
// attempt as soon as a Deliverer pulls it, retried with backoff), and it has the same id, so a
// Publish of the same event afterwards does not send it to this endpoint twice. A disabled or
// missing endpoint is ErrNotFound.
func (w *Webhooks) PublishTo(ctx context.Context, ev Event, endpointID string) error {
	switch {
	case !validEventID(ev.ID):
		return fmt.Errorf("%w: id must be 1 to %d of A-Z a-z 0-9 _ - . :", ErrInvalidEvent, maxEventIDLength)
	case !validID(ev.OrgID):
		return fmt.Errorf("%w: organisation id", ErrInvalidEvent)
	case !validID(endpointID):
		return ErrNotFound
	case !knownType(ev.Type):
		return fmt.Errorf("%w: %q", ErrUnknownEventType, ev.Type)
	case len(ev.Data) > maxDataBytes:
		return fmt.Errorf("%w: data is larger than %d bytes", ErrInvalidEvent, maxDataBytes)
	case len(ev.Data) > 0 && !json.Valid(ev.Data):
		return fmt.Errorf("%w: data is not JSON", ErrInvalidEvent)
	}
	ep, _, err := w.loadEndpoint(ctx, ev.OrgID, endpointID)
	if err != nil {
		return err
	}
	if !ep.Enabled {
		return fmt.Errorf("%w: endpoint %s is disabled", ErrNotFound, endpointID)
	}
	if ev.Time.IsZero() {
		ev.Time = w.now()
	}
	data := ev.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	body, err := json.Marshal(payload{ID: ev.ID, Type: ev.Type, CreatedAt: ev.Time.UTC(), OrganizationID: ev.OrgID, Data: data})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	id := deliveryIDFor(ev.ID, ep.ID)
	if _, err := w.deliveries.Get(ctx, deliveryKey(ev.OrgID, ep.ID, id)); err == nil {
		return nil // published before
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	now := w.now().UTC()
	rec := &deliveryRecord{Delivery: Delivery{
		ID: id, EventID: ev.ID, EndpointID: ep.ID, OrgID: ev.OrgID, Type: ev.Type,
		State: StatePending, NextAttemptAt: now, CreatedAt: now,
	}, Body: body}
	return w.enqueue(ctx, rec, ev.ID+":"+ep.ID)
}
