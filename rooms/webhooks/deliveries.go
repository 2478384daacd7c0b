package webhooks

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// State is where a delivery stands.
type State string

// Delivery states.
const (
	StatePending   State = "pending"   // queued, or waiting for its next attempt
	StateDelivered State = "delivered" // the endpoint answered 2xx
	StateFailed    State = "failed"    // given up: out of time, endpoint gone or disabled, target refused
)

// Delivery is one event on its way to one endpoint, and the log of its attempts.
type Delivery struct {
	ID            string     `json:"id"`
	EventID       string     `json:"event_id"`
	EndpointID    string     `json:"endpoint_id"`
	OrgID         string     `json:"organization_id"`
	Type          string     `json:"type"`
	State         State      `json:"state"`
	Attempts      int        `json:"attempts"`
	LastStatus    int        `json:"last_status,omitempty"` // HTTP status of the last attempt, 0 if none came back
	LastError     string     `json:"last_error,omitempty"`
	NextAttemptAt time.Time  `json:"next_attempt_at,omitzero"` // while pending
	DeliveredAt   *time.Time `json:"delivered_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
}

// deliveryRecord is a delivery as stored: with the request body, for Redeliver.
type deliveryRecord struct {
	Delivery
	Body json.RawMessage `json:"body"`
}

// deliveryKey is {org}.{endpoint}.{delivery}: listing one endpoint's deliveries reads only
// its keys.
func deliveryKey(orgID, endpointID, id string) string {
	return orgID + "." + endpointID + "." + id
}

// Deliveries returns up to limit (default 50, at most 500) of the deliveries kept for the
// organisation's endpoint, newest first; all its endpoints when endpointID is empty.
func (w *Webhooks) Deliveries(ctx context.Context, orgID, endpointID string, limit int) ([]Delivery, error) {
	if !validID(orgID) || endpointID != "" && !validID(endpointID) {
		return nil, ErrInvalidID
	}
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	filter := orgID + ".*.*"
	if endpointID != "" {
		filter = orgID + "." + endpointID + ".*"
	}
	recs, err := loadAll[deliveryRecord](ctx, w.deliveries, filter)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(recs, func(a, b deliveryRecord) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
	})
	out := make([]Delivery, 0, min(limit, len(recs)))
	for i := range recs[:min(limit, len(recs))] {
		out = append(out, recs[i].Delivery)
	}
	return out, nil
}

// Redeliver queues the event of a delivery to its endpoint again, as a new delivery with its
// own attempts; the event id, hence Assist-Webhook-Id, stays the same so receivers can tell.
func (w *Webhooks) Redeliver(ctx context.Context, orgID, deliveryID string) error {
	if !validID(orgID) || !validID(deliveryID) {
		return ErrNotFound
	}
	lister, err := w.deliveries.ListKeysFiltered(ctx, orgID+".*."+deliveryID)
	if err != nil {
		return err
	}
	var key string
	for k := range lister.Keys() {
		key = k
	}
	_ = lister.Stop()
	if key == "" {
		return ErrNotFound
	}
	old, _, err := getJSON[deliveryRecord](ctx, w.deliveries, key)
	if err != nil {
		return err
	}
	ep, _, err := w.loadEndpoint(ctx, orgID, old.EndpointID)
	if err != nil {
		return fmt.Errorf("endpoint %s: %w", old.EndpointID, err)
	}
	now := w.now().UTC()
	rec := &deliveryRecord{Delivery: Delivery{
		ID: newID("dlv_"), EventID: old.EventID, EndpointID: ep.ID, OrgID: orgID, Type: old.Type,
		State: StatePending, NextAttemptAt: now, CreatedAt: now,
	}, Body: old.Body}
	return w.enqueue(ctx, rec, rec.ID)
}

// saveDelivery writes a delivery record over the revision it was read at (0: create it).
func (w *Webhooks) saveDelivery(ctx context.Context, rec *deliveryRecord, rev uint64) (uint64, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	key := deliveryKey(rec.OrgID, rec.EndpointID, rec.ID)
	if rev == 0 {
		return w.deliveries.Create(ctx, key, data)
	}
	return w.deliveries.Update(ctx, key, data, rev)
}

// recordFromMessage records a delivery from its queued message, or reads the record that
// Publish made in the meantime.
func (d *Deliverer) recordFromMessage(ctx context.Context, msg jetstream.Msg) (*deliveryRecord, uint64, error) {
	h := msg.Headers()
	created, err := time.Parse(time.RFC3339Nano, h.Get(hdrCreated))
	if err != nil {
		return nil, 0, fmt.Errorf("bad %s header: %w", hdrCreated, err)
	}
	rec := &deliveryRecord{Delivery: Delivery{
		ID: h.Get(hdrDelivery), EventID: h.Get(hdrEvent), EndpointID: h.Get(hdrEndpoint),
		OrgID: h.Get(hdrOrg), Type: h.Get(hdrType), State: StatePending,
		NextAttemptAt: created, CreatedAt: created,
	}, Body: msg.Data()}
	rev, err := d.w.saveDelivery(ctx, rec, 0)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return getJSON[deliveryRecord](ctx, d.w.deliveries, deliveryKey(rec.OrgID, rec.EndpointID, rec.ID))
	}
	return rec, rev, err
}
