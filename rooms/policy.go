package rooms

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// Policy is what an organisation decides for all of its sessions.
type Policy struct {
	// AutoRecord records every call from the moment a customer is admitted.
	AutoRecord bool `json:"auto_record"`
	// RetentionDays deletes recordings, snapshots and files this many days after they were
	// stored; 0 keeps them.
	RetentionDays int `json:"retention_days"`
	// FileMaxBytes bounds one shared file; 0 means the platform's limit.
	FileMaxBytes int64 `json:"file_max_bytes"`
	// FileTypes are the content types customers and specialists may share (a subset of what
	// the platform accepts); empty means all of those.
	FileTypes []string `json:"file_types"`
	// OpeningHours are when specialists take calls (nil: always); outside them customers are
	// offered to leave a video message (see openinghours.go).
	OpeningHours *OpeningHours `json:"opening_hours,omitempty"`
	// DispatchWebhookID names the webhook endpoint that receives emergencies (the session, its
	// location and timeline, then each location update), whatever events it subscribes to.
	DispatchWebhookID string `json:"dispatch_webhook_id,omitempty"`
}

// ErrInvalidPolicy is returned for a policy outside what the platform allows.
var ErrInvalidPolicy = errors.New("invalid policy")

// Bounds of a policy.
const maxRetentionDays = 3650

// Check validates a policy against the platform's file limit and the content types it can
// accept.
func (p Policy) Check(platformMaxFile int64, platformTypes []string) error {
	switch {
	case p.RetentionDays < 0 || p.RetentionDays > maxRetentionDays:
		return fmt.Errorf("%w: retention_days must be 0 (keep) to %d", ErrInvalidPolicy, maxRetentionDays)
	case p.FileMaxBytes < 0 || p.FileMaxBytes > platformMaxFile:
		return fmt.Errorf("%w: file_max_bytes must be 0 (the platform's limit) to %d", ErrInvalidPolicy, platformMaxFile)
	}
	for _, t := range p.FileTypes {
		if !slices.Contains(platformTypes, t) {
			return fmt.Errorf("%w: file type %q is not one of %v", ErrInvalidPolicy, t, platformTypes)
		}
	}
	if p.DispatchWebhookID != "" && !ValidID(p.DispatchWebhookID) {
		return fmt.Errorf("%w: dispatch_webhook_id is not a webhook id", ErrInvalidPolicy)
	}
	return p.OpeningHours.check()
}

// UpdateOrganization changes a tenant with compare-and-set; change sees the latest state.
func (s *Store) UpdateOrganization(ctx context.Context, id string, change func(*Organization) error) (*Organization, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	return casUpdate(ctx, s.orgs, id, change)
}

// OrganizationIDs lists every tenant's id, for background jobs that visit them all.
func (s *Store) OrganizationIDs(ctx context.Context) ([]string, error) {
	lister, err := s.orgs.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for key := range lister.Keys() {
		ids = append(ids, key)
	}
	_ = lister.Stop()
	slices.Sort(ids)
	return ids, nil
}

// DeleteSession forgets a session: its record and its timeline (chat, tools).
// Its objects in storage are the caller's to delete first.
func (s *Store) DeleteSession(ctx context.Context, orgID, id string) error {
	if !ValidID(orgID) || !ValidID(id) {
		return ErrNotFound
	}
	if _, _, err := getJSON[Session](ctx, s.sessions, sessionKey(orgID, id)); err != nil {
		return err
	}
	// The timeline holds what people said and shared. Events stay until the stream's own
	// retention: webhook deliveries may still be reading them.
	st, err := s.bus.JS.Stream(ctx, streamTimeline)
	if err != nil {
		return fmt.Errorf("rooms: stream %s: %w", streamTimeline, err)
	}
	subject := timelineSubject(orgID, id, "*")
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
		return fmt.Errorf("rooms: purge %s: %w", subject, err)
	}
	if err := s.sessions.Purge(ctx, sessionKey(orgID, id)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	return nil
}
