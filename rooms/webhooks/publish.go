package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Event is something an organisation's endpoints may be told about. ID identifies it: it is
// sent as Assist-Webhook-Id, and publishing an event with an ID already published queues
// nothing new, so callers can retry Publish safely.
type Event struct {
	ID    string          // 1 to 128 of A-Z a-z 0-9 _ - . :
	OrgID string          // the organisation whose endpoints receive it
	Type  string          // one of EventTypes
	Time  time.Time       // when it happened; now if zero
	Data  json.RawMessage // the event's object, JSON, at most 64 KiB; null if empty
}

// payload is the request body. Field order is the documented one.
type payload struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	CreatedAt      time.Time       `json:"created_at"`
	OrganizationID string          `json:"organization_id"`
	Data           json.RawMessage `json:"data"`
}

// Message headers on ASSIST_WEBHOOKS. The message alone is enough to deliver: its record in
// the deliveries bucket is made from it if a crash lost the record.
const (
	hdrDelivery = "Assist-Delivery-Id"
	hdrEndpoint = "Assist-Endpoint-Id"
	hdrOrg      = "Assist-Org-Id"
	hdrEvent    = "Assist-Event-Id"
	hdrType     = "Assist-Event-Type"
	hdrCreated  = "Assist-Delivery-Created"
)

func validEventID(s string) bool {
	if s == "" || len(s) > maxEventIDLength {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.:", r)) {
			return false
		}
	}
	return true
}

// Publish queues a delivery of ev to each enabled endpoint of its organisation that wants its
// type. It returns once every delivery is stored in JetStream.
func (w *Webhooks) Publish(ctx context.Context, ev Event) error {
	switch {
	case !validEventID(ev.ID):
		return fmt.Errorf("%w: id must be 1 to %d of A-Z a-z 0-9 _ - . :", ErrInvalidEvent, maxEventIDLength)
	case !validID(ev.OrgID):
		return fmt.Errorf("%w: organisation id", ErrInvalidEvent)
	case !knownType(ev.Type):
		return fmt.Errorf("%w: %q", ErrUnknownEventType, ev.Type)
	case len(ev.Data) > maxDataBytes:
		return fmt.Errorf("%w: data is larger than %d bytes", ErrInvalidEvent, maxDataBytes)
	case len(ev.Data) > 0 && !json.Valid(ev.Data):
		return fmt.Errorf("%w: data is not JSON", ErrInvalidEvent)
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
	endpoints, err := loadAll[endpointRecord](ctx, w.endpoints, ev.OrgID+".*")
	if err != nil {
		return fmt.Errorf("webhooks: list endpoints: %w", err)
	}
	slices.SortFunc(endpoints, func(a, b endpointRecord) int { return strings.Compare(a.ID, b.ID) })
	var errs []error
	for _, ep := range endpoints {
		if !ep.Enabled || !ep.Wants(ev.Type) {
			continue
		}
		id := deliveryIDFor(ev.ID, ep.ID)
		_, err := w.deliveries.Get(ctx, deliveryKey(ev.OrgID, ep.ID, id))
		if err == nil {
			continue // published before
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			errs = append(errs, err)
			continue
		}
		now := w.now().UTC()
		rec := &deliveryRecord{Delivery: Delivery{
			ID: id, EventID: ev.ID, EndpointID: ep.ID, OrgID: ev.OrgID, Type: ev.Type,
			State: StatePending, NextAttemptAt: now, CreatedAt: now,
		}, Body: body}
		if err := w.enqueue(ctx, rec, ev.ID+":"+ep.ID); err != nil {
			errs = append(errs, fmt.Errorf("endpoint %s: %w", ep.ID, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("webhooks: publish %s: %w", ev.ID, err)
	}
	return nil
}

// enqueue puts a delivery on the work queue, then records it. The message goes first: it is
// what gets delivered, and if recording fails the Deliverer makes the record from it. msgID
// makes a repeated enqueue of the same delivery a no-op within the dedupe window.
func (w *Webhooks) enqueue(ctx context.Context, rec *deliveryRecord, msgID string) error {
	d := &rec.Delivery
	msg := nats.NewMsg(subjectRoot + "." + d.OrgID + "." + d.EndpointID)
	msg.Header.Set(hdrDelivery, d.ID)
	msg.Header.Set(hdrEndpoint, d.EndpointID)
	msg.Header.Set(hdrOrg, d.OrgID)
	msg.Header.Set(hdrEvent, d.EventID)
	msg.Header.Set(hdrType, d.Type)
	msg.Header.Set(hdrCreated, d.CreatedAt.Format(time.RFC3339Nano))
	msg.Data = rec.Body
	if _, err := w.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(streamName)); err != nil {
		return fmt.Errorf("queue delivery: %w", err)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := w.deliveries.Create(ctx, deliveryKey(d.OrgID, d.EndpointID, d.ID), data); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("record delivery: %w", err)
	}
	return nil
}
