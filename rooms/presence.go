package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/assist-video/assist/rooms/bus"
)

// Presence: whether a specialist can take a customer now. A specialist chooses a manual
// status (available, busy or away); on top of it, they are busy while they are in a session,
// and offline when no console of theirs has been open for a grace period. The record lives in
// JetStream KV (one key per specialist), so every node sees the same, and a node follows an
// organisation's records with WatchPresence.

const bucketPresence = "assist_presence"

// Presence statuses.
const (
	PresenceAvailable = "available"
	PresenceBusy      = "busy"
	PresenceAway      = "away"
	PresenceOffline   = "offline"
)

// PresenceRecord is one specialist's presence as stored.
type PresenceRecord struct {
	OrgID        string `json:"org_id"`
	SpecialistID string `json:"specialist_id"`
	// Manual is the status the specialist chose (available unless they chose otherwise).
	Manual string `json:"manual"`
	// Consoles are the open staff sockets (connection id → node).
	Consoles map[string]string `json:"consoles,omitempty"`
	// Sessions are the sessions the specialist is in (session id → "node/connection").
	Sessions map[string]string `json:"sessions,omitempty"`
	// LastConsoleAt is when the last console closed (zero while one is open).
	LastConsoleAt time.Time `json:"last_console_at,omitzero"`
	// Offline is set once the grace after the last console closed has passed.
	Offline bool `json:"offline,omitempty"`
	// Since is when Status last changed.
	Since time.Time `json:"since"`
	// Status is what colleagues see, as of the last write; Effective recomputes it at a time.
	Status string `json:"status"`
}

// Effective is the status colleagues see at now, given the offline grace: busy in a session,
// offline when no console has been open for grace, else the manual status.
func (r *PresenceRecord) Effective(now time.Time, grace time.Duration) string {
	switch {
	case r == nil:
		return PresenceOffline
	case len(r.Sessions) > 0:
		return PresenceBusy
	case len(r.Consoles) == 0 && (r.Offline || r.LastConsoleAt.IsZero() || now.Sub(r.LastConsoleAt) >= grace):
		return PresenceOffline
	case r.Manual == "":
		return PresenceAvailable
	}
	return r.Manual
}

// ValidManualPresence says whether a status may be chosen by hand.
func ValidManualPresence(status string) bool {
	return status == PresenceAvailable || status == PresenceBusy || status == PresenceAway
}

func presenceKey(orgID, specialistID string) string { return orgID + "." + specialistID }

// Presence is the presence bucket.
type Presence struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

// OpenPresence creates the presence bucket if it is missing.
func OpenPresence(ctx context.Context, b *bus.Bus) (*Presence, error) {
	kv, err := b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucketPresence, History: 1, Storage: jetstream.FileStorage, Replicas: b.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("rooms: bucket %s: %w", bucketPresence, err)
	}
	return &Presence{kv: kv, now: time.Now}, nil
}

// updatePresence applies change to a specialist's record with compare-and-set and returns the
// new record; grace is the offline grace (for Status).
func (s *Presence) updatePresence(ctx context.Context, orgID, specialistID string, grace time.Duration, change func(*PresenceRecord) bool) (*PresenceRecord, error) {
	if !ValidID(orgID) || !ValidID(specialistID) {
		return nil, ErrNotFound
	}
	kv := s.kv
	key := presenceKey(orgID, specialistID)
	for range maxCASAttempts {
		rec, rev, err := getJSON[PresenceRecord](ctx, kv, key)
		if errors.Is(err, ErrNotFound) {
			rec, rev, err = &PresenceRecord{OrgID: orgID, SpecialistID: specialistID, Manual: PresenceAvailable}, 0, nil
		}
		if err != nil {
			return nil, err
		}
		if !change(rec) {
			return rec, nil
		}
		now := s.now().UTC()
		if status := rec.Effective(now, grace); status != rec.Status {
			rec.Status, rec.Since = status, now
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		if rev == 0 {
			_, err = kv.Create(ctx, key, data)
		} else {
			_, err = kv.Update(ctx, key, data, rev)
		}
		if err == nil {
			return rec, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !isWrongSequence(err) {
			return nil, err
		}
	}
	return nil, ErrConflict
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// SetManualPresence records the status a specialist chose.
func (s *Presence) SetManualPresence(ctx context.Context, orgID, specialistID, status string, grace time.Duration) (*PresenceRecord, error) {
	if !ValidManualPresence(status) {
		return nil, fmt.Errorf("%w: %q is not a status one can choose", ErrInvalidState, status)
	}
	return s.updatePresence(ctx, orgID, specialistID, grace, func(r *PresenceRecord) bool {
		if r.Manual == status {
			return false
		}
		r.Manual = status
		return true
	})
}

// ConsoleOpened records an open staff socket (conn) on node.
func (s *Presence) ConsoleOpened(ctx context.Context, orgID, specialistID, conn, node string, grace time.Duration) (*PresenceRecord, error) {
	return s.updatePresence(ctx, orgID, specialistID, grace, func(r *PresenceRecord) bool {
		if r.Consoles == nil {
			r.Consoles = map[string]string{}
		}
		r.Consoles[conn] = node
		r.LastConsoleAt, r.Offline = time.Time{}, false
		return true
	})
}

// ConsoleClosed forgets a staff socket; with none left the specialist goes offline after grace
// (ExpireConsoles marks it).
func (s *Presence) ConsoleClosed(ctx context.Context, orgID, specialistID, conn string, grace time.Duration) (*PresenceRecord, error) {
	return s.updatePresence(ctx, orgID, specialistID, grace, func(r *PresenceRecord) bool {
		if _, ok := r.Consoles[conn]; !ok {
			return false
		}
		delete(r.Consoles, conn)
		if len(r.Consoles) == 0 {
			r.LastConsoleAt = s.now().UTC()
		}
		return true
	})
}

// MarkOfflineIfGone marks the specialist offline when no console has been open for grace; it
// changes nothing when one opened meanwhile.
func (s *Presence) MarkOfflineIfGone(ctx context.Context, orgID, specialistID string, grace time.Duration) (*PresenceRecord, error) {
	return s.updatePresence(ctx, orgID, specialistID, grace, func(r *PresenceRecord) bool {
		if len(r.Consoles) > 0 || r.Offline || r.LastConsoleAt.IsZero() || s.now().Sub(r.LastConsoleAt) < grace {
			return false
		}
		r.Offline = true
		return true
	})
}

// DropNodeConsoles forgets every console and session socket a node held (it restarted: they
// are gone).
func (s *Presence) DropNodeConsoles(ctx context.Context, node string, grace time.Duration) error {
	kv := s.kv
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		orgID, specialistID, ok := strings.Cut(k, ".")
		if !ok {
			continue
		}
		_, err := s.updatePresence(ctx, orgID, specialistID, grace, func(r *PresenceRecord) bool {
			changed := false
			for conn, n := range r.Consoles {
				if n == node {
					delete(r.Consoles, conn)
					changed = true
				}
			}
			for session, where := range r.Sessions {
				if strings.HasPrefix(where, node+"/") {
					delete(r.Sessions, session)
					changed = true
				}
			}
			if changed && len(r.Consoles) == 0 {
				r.LastConsoleAt = s.now().UTC()
			}
			return changed
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// EnteredSession marks the specialist busy in a session (conn on node is their socket in it).
func (s *Presence) EnteredSession(ctx context.Context, orgID, specialistID, sessionID, node, conn string, grace time.Duration) (*PresenceRecord, error) {
	return s.updatePresence(ctx, orgID, specialistID, grace, func(r *PresenceRecord) bool {
		if r.Sessions == nil {
			r.Sessions = map[string]string{}
		}
		r.Sessions[sessionID] = node + "/" + conn
		return true
	})
}

// LeftSession ends the busy state of one session, unless a newer socket (another conn) took
// the specialist's place in it.
func (s *Presence) LeftSession(ctx context.Context, orgID, specialistID, sessionID, node, conn string, grace time.Duration) (*PresenceRecord, error) {
	return s.updatePresence(ctx, orgID, specialistID, grace, func(r *PresenceRecord) bool {
		if c, ok := r.Sessions[sessionID]; !ok || c != node+"/"+conn {
			return false
		}
		delete(r.Sessions, sessionID)
		return true
	})
}

// OrgPresence reads every presence record of an organisation, by specialist id.
func (s *Presence) OrgPresence(ctx context.Context, orgID string) (map[string]*PresenceRecord, error) {
	if !ValidID(orgID) {
		return nil, ErrNotFound
	}
	kv := s.kv
	out := map[string]*PresenceRecord{}
	lister, err := kv.ListKeysFiltered(ctx, orgID+".*")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		rec, _, err := getJSON[PresenceRecord](ctx, kv, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[rec.SpecialistID] = rec
	}
	return out, nil
}

// PresenceWatch follows an organisation's presence records from every node.
type PresenceWatch struct {
	watcher jetstream.KeyWatcher
	cancel  context.CancelFunc
	done    chan struct{}
}

// WatchPresence calls changed (from its own goroutine) with the organisation's records after
// they are loaded and after every change.
func (s *Presence) WatchPresence(orgID string, changed func(map[string]*PresenceRecord)) (*PresenceWatch, error) {
	if !ValidID(orgID) {
		return nil, ErrNotFound
	}
	ctx, cancel := context.WithCancel(context.Background())
	watcher, err := s.kv.Watch(ctx, orgID+".*")
	if err != nil {
		cancel()
		return nil, fmt.Errorf("rooms: watch presence of %s: %w", orgID, err)
	}
	w := &PresenceWatch{watcher: watcher, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer func() { _ = watcher.Stop() }()
		records := map[string]*PresenceRecord{}
		loaded := false
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-watcher.Updates():
				if !ok {
					return
				}
				if e == nil {
					loaded = true
				} else {
					_, id, _ := strings.Cut(e.Key(), ".")
					var rec PresenceRecord
					if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &rec) != nil {
						delete(records, id)
					} else {
						records[id] = &rec
					}
				}
				if loaded {
					changed(maps.Clone(records))
				}
			}
		}
	}()
	return w, nil
}

// Stop ends the watch.
func (w *PresenceWatch) Stop() {
	w.cancel()
	<-w.done
}
