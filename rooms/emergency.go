package rooms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Emergencies: a specialist flags a session as an emergency; while it is flagged the
// customer's location is asked for and refreshed, and the organisation's dispatch receiver is
// told (signaling does the telling). The flag and the latest location are kept in the KV
// bucket assist_emergencies under "{org}.{session}", so that any node sees them.

const bucketEmergencies = "assist_emergencies"

// Location is a customer's position as their browser gave it.
type Location struct {
	Latitude   float64   `json:"latitude"`
	Longitude  float64   `json:"longitude"`
	Accuracy   float64   `json:"accuracy"`  // metres
	Timestamp  int64     `json:"timestamp"` // the browser's, milliseconds since the epoch
	ReceivedAt time.Time `json:"received_at"`
}

// Emergency is a session's emergency flag.
type Emergency struct {
	OrgID     string     `json:"org_id"`
	SessionID string     `json:"session_id"`
	Active    bool       `json:"active"`
	Reason    string     `json:"reason,omitempty"`
	FlaggedBy string     `json:"flagged_by"`
	FlaggedAt time.Time  `json:"flagged_at"`
	ClearedAt *time.Time `json:"cleared_at,omitempty"`
	Location  *Location  `json:"location,omitempty"`
	// Updates counts the locations received while flagged.
	Updates int `json:"updates"`
}

func (s *Store) emergencies(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := s.bus.JS.KeyValue(ctx, bucketEmergencies)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = s.bus.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: bucketEmergencies, History: 1, Storage: jetstream.FileStorage, Replicas: s.bus.Replicas,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("rooms: bucket %s: %w", bucketEmergencies, err)
	}
	return kv, nil
}

// Emergency reads a session's flag; ErrNotFound when it was never flagged.
func (s *Store) Emergency(ctx context.Context, orgID, sessionID string) (*Emergency, error) {
	if !ValidID(orgID) || !ValidID(sessionID) {
		return nil, ErrNotFound
	}
	kv, err := s.emergencies(ctx)
	if err != nil {
		return nil, err
	}
	e, _, err := getJSON[Emergency](ctx, kv, sessionKey(orgID, sessionID))
	return e, err
}

// SetEmergency flags a session (active) or clears the flag. It reports the new state and
// whether it changed.
func (s *Store) SetEmergency(ctx context.Context, orgID, sessionID string, active bool, reason, by string) (*Emergency, bool, error) {
	if !ValidID(orgID) || !ValidID(sessionID) {
		return nil, false, ErrNotFound
	}
	kv, err := s.emergencies(ctx)
	if err != nil {
		return nil, false, err
	}
	key := sessionKey(orgID, sessionID)
	now := s.now().UTC()
	if !active {
		changed := false
		e, err := casUpdate(ctx, kv, key, func(e *Emergency) error {
			changed = e.Active
			if e.Active {
				e.Active, e.ClearedAt = false, &now
			}
			return nil
		})
		if errors.Is(err, ErrNotFound) {
			return &Emergency{OrgID: orgID, SessionID: sessionID}, false, nil
		}
		return e, changed, err
	}
	fresh := &Emergency{OrgID: orgID, SessionID: sessionID, Active: true, Reason: reason, FlaggedBy: by, FlaggedAt: now}
	if err := createJSON(ctx, kv, key, fresh); err == nil {
		return fresh, true, nil
	} else if !errors.Is(err, ErrConflict) {
		return nil, false, err
	}
	changed := false
	e, err := casUpdate(ctx, kv, key, func(e *Emergency) error {
		changed = !e.Active
		if !e.Active {
			*e = Emergency{OrgID: orgID, SessionID: sessionID, Active: true, Reason: reason, FlaggedBy: by,
				FlaggedAt: now, Location: e.Location}
		}
		return nil
	})
	return e, changed, err
}

// EmergencyLocation records a location for a flagged session; it reports false (and changes
// nothing) when the session is not flagged.
func (s *Store) EmergencyLocation(ctx context.Context, orgID, sessionID string, loc Location) (*Emergency, bool, error) {
	if !ValidID(orgID) || !ValidID(sessionID) {
		return nil, false, ErrNotFound
	}
	kv, err := s.emergencies(ctx)
	if err != nil {
		return nil, false, err
	}
	flagged := false
	e, err := casUpdate(ctx, kv, sessionKey(orgID, sessionID), func(e *Emergency) error {
		if flagged = e.Active; flagged {
			loc.ReceivedAt = s.now().UTC()
			e.Location = &loc
			e.Updates++
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	return e, flagged, err
}
