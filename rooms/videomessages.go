package rooms

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Video messages ("voicemail"): a customer nobody could take (the queue timed out, or the
// organisation is closed) records a short message in the browser. The recording is an object
// in storage (signaling puts it there); its record, with who left it and what became of it, is
// kept here in the KV bucket assist_video_messages under "{org}.{id}".

const bucketVideoMessages = "assist_video_messages"

// Video message states.
const (
	VideoMessageNew     = "new"
	VideoMessageHandled = "handled"
)

// Why a customer left a message.
const (
	VideoMessageQueueTimeout = "queue_timeout"
	VideoMessageAfterHours   = "after_hours"
)

// VideoMessage is one customer's recorded message.
type VideoMessage struct {
	ID            string   `json:"id"`
	OrgID         string   `json:"org_id"`
	SessionID     string   `json:"session_id"`
	AppointmentID string   `json:"appointment_id,omitempty"`
	Customer      Customer `json:"customer"`
	Reason        string   `json:"reason"`
	// ObjectKey is the recording in object storage; ContentType its sniffed type.
	ObjectKey   string     `json:"object_key"`
	ContentType string     `json:"content_type"`
	Size        int64      `json:"size"`
	DurationMS  int64      `json:"duration_ms"`
	AudioOnly   bool       `json:"audio_only"`
	State       string     `json:"state"`
	CreatedAt   time.Time  `json:"created_at"`
	HandledAt   *time.Time `json:"handled_at,omitempty"`
	HandledBy   string     `json:"handled_by,omitempty"`
	CallBack    *CallBack  `json:"call_back,omitempty"`
}

// CallBack is the new session a specialist opened to call the customer back, and where its
// link was sent (the delivery states are the notifier's, under the message's id).
type CallBack struct {
	SessionID string    `json:"session_id"`
	Channels  []string  `json:"channels"`
	By        string    `json:"by"`
	At        time.Time `json:"at"`
}

// NewVideoMessageID names a video message (sorts by time of creation).
func NewVideoMessageID() string { return newID("vm_") }

// videoMessages opens the bucket on first use (every node may create it; the config is the
// same).
func (s *Store) videoMessages(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := s.bus.JS.KeyValue(ctx, bucketVideoMessages)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = s.bus.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: bucketVideoMessages, History: 1, Storage: jetstream.FileStorage, Replicas: s.bus.Replicas,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("rooms: bucket %s: %w", bucketVideoMessages, err)
	}
	return kv, nil
}

// AddVideoMessage stores a new message's record (its ID and ObjectKey already chosen).
func (s *Store) AddVideoMessage(ctx context.Context, m *VideoMessage) error {
	if !ValidID(m.OrgID) || !ValidID(m.ID) {
		return ErrNotFound
	}
	kv, err := s.videoMessages(ctx)
	if err != nil {
		return err
	}
	if m.State == "" {
		m.State = VideoMessageNew
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = s.now().UTC()
	}
	return createJSON(ctx, kv, sessionKey(m.OrgID, m.ID), m)
}

// VideoMessage reads one message of an organisation.
func (s *Store) VideoMessage(ctx context.Context, orgID, id string) (*VideoMessage, error) {
	if !ValidID(orgID) || !ValidID(id) {
		return nil, ErrNotFound
	}
	kv, err := s.videoMessages(ctx)
	if err != nil {
		return nil, err
	}
	m, _, err := getJSON[VideoMessage](ctx, kv, sessionKey(orgID, id))
	return m, err
}

// UpdateVideoMessage changes a message with compare-and-set.
func (s *Store) UpdateVideoMessage(ctx context.Context, orgID, id string, change func(*VideoMessage) error) (*VideoMessage, error) {
	if !ValidID(orgID) || !ValidID(id) {
		return nil, ErrNotFound
	}
	kv, err := s.videoMessages(ctx)
	if err != nil {
		return nil, err
	}
	return casUpdate(ctx, kv, sessionKey(orgID, id), change)
}

// DeleteVideoMessage forgets a message's record; its object is the caller's to delete first.
func (s *Store) DeleteVideoMessage(ctx context.Context, orgID, id string) error {
	if _, err := s.VideoMessage(ctx, orgID, id); err != nil {
		return err
	}
	kv, err := s.videoMessages(ctx)
	if err != nil {
		return err
	}
	return kv.Purge(ctx, sessionKey(orgID, id))
}

// DeleteVideoMessagesWhere forgets the records of an organisation's messages that match (those
// of a session being deleted, those whose recording the retention job removed) and returns how
// many it forgot. The objects are the caller's to delete; deleting a record twice is harmless.
func (s *Store) DeleteVideoMessagesWhere(ctx context.Context, orgID string, match func(*VideoMessage) bool) (int, error) {
	if !ValidID(orgID) {
		return 0, nil
	}
	kv, err := s.videoMessages(ctx)
	if err != nil {
		return 0, err
	}
	lister, err := kv.ListKeysFiltered(ctx, orgID+".*")
	if err != nil {
		return 0, err
	}
	var keys []string
	for key := range lister.Keys() {
		keys = append(keys, key)
	}
	_ = lister.Stop()
	deleted := 0
	var errs []error
	for _, key := range keys {
		m, _, err := getJSON[VideoMessage](ctx, kv, key)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !match(m) {
			continue
		}
		if err := kv.Purge(ctx, key); err != nil {
			errs = append(errs, fmt.Errorf("rooms: delete video message %s: %w", m.ID, err))
			continue
		}
		deleted++
	}
	return deleted, errors.Join(errs...)
}

// VideoMessageFilter selects messages: by state ("" for all) and session, a page after a cursor.
type VideoMessageFilter struct {
	State     string
	SessionID string
	Limit     int
	After     string
}

// ListVideoMessages pages through an organisation's messages, newest first.
func (s *Store) ListVideoMessages(ctx context.Context, orgID string, f VideoMessageFilter) ([]VideoMessage, bool, error) {
	if !ValidID(orgID) {
		return nil, false, nil
	}
	kv, err := s.videoMessages(ctx)
	if err != nil {
		return nil, false, err
	}
	lister, err := kv.ListKeysFiltered(ctx, orgID+".*")
	if err != nil {
		return nil, false, err
	}
	var all []VideoMessage
	for key := range lister.Keys() {
		m, _, err := getJSON[VideoMessage](ctx, kv, key)
		if err != nil {
			continue
		}
		if (f.State == "" || m.State == f.State) && (f.SessionID == "" || m.SessionID == f.SessionID) {
			all = append(all, *m)
		}
	}
	_ = lister.Stop()
	slices.SortFunc(all, func(a, b VideoMessage) int { return strings.Compare(b.ID, a.ID) })
	if f.After != "" {
		i := slices.IndexFunc(all, func(m VideoMessage) bool { return m.ID == f.After })
		if i < 0 {
			return nil, false, fmt.Errorf("%w: unknown cursor", ErrNotFound)
		}
		all = all[i+1:]
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 20
	}
	return all[:min(limit, len(all))], len(all) > limit, nil
}
