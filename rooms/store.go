package rooms

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/assist-video/assist/rooms/bus"
)

// Bucket and stream names.
const (
	bucketOrgs             = "assist_orgs"
	bucketSpecialists      = "assist_specialists"
	bucketEmails           = "assist_specialist_emails"
	bucketAPIKeys          = "assist_apikeys"
	bucketSessions         = "assist_sessions"
	bucketConfig           = "assist_config"
	streamEvents           = "ASSIST_EVENTS"
	eventsSubjectRoot      = "assist.events"
	eventsRetention        = 30 * 24 * time.Hour
	defaultMaxParticipants = 16
	maxCASAttempts         = 20
)

// Store is the state of Assist in JetStream.
type Store struct {
	bus          *bus.Bus
	orgs         jetstream.KeyValue
	specialists  jetstream.KeyValue
	emails       jetstream.KeyValue
	apiKeys      jetstream.KeyValue
	sessions     jetstream.KeyValue
	config       jetstream.KeyValue
	appointments jetstream.KeyValue
	invitations  jetstream.KeyValue // see invitations.go
	log          *slog.Logger
	now          func() time.Time
	// maxParticipants bounds one session; set once, before use, by SetMaxParticipants.
	maxParticipants int
	// reconnectGrace (a time.Duration) is how long a dropped participant keeps their place.
	reconnectGrace atomic.Int64
}

// SetMaxParticipants bounds how many participants one session holds (specialists and
// customers together). Call it before the store is used.
func (s *Store) SetMaxParticipants(n int) {
	if n > 0 {
		s.maxParticipants = n
	}
}

// Open creates the buckets and the events stream if they are missing.
func Open(ctx context.Context, b *bus.Bus, log *slog.Logger) (*Store, error) {
	s := &Store{bus: b, log: log, now: time.Now, maxParticipants: defaultMaxParticipants}
	s.reconnectGrace.Store(int64(DefaultReconnectGrace))
	buckets := []struct {
		name string
		kv   *jetstream.KeyValue
	}{
		{bucketOrgs, &s.orgs}, {bucketSpecialists, &s.specialists}, {bucketEmails, &s.emails},
		{bucketAPIKeys, &s.apiKeys}, {bucketSessions, &s.sessions}, {bucketConfig, &s.config},
		{bucketAppointments, &s.appointments}, {bucketInvitations, &s.invitations},
	}
	for _, bk := range buckets {
		kv, err := b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:   bk.name,
			History:  1,
			Storage:  jetstream.FileStorage,
			Replicas: b.Replicas,
		})
		if err == nil {
			kv, err = readYourWrites(ctx, b, kv) // nodes.go
		}
		if err != nil {
			return nil, fmt.Errorf("rooms: bucket %s: %w", bk.name, err)
		}
		*bk.kv = kv
	}
	_, err := b.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:     streamEvents,
		Subjects: []string{eventsSubjectRoot + ".>"},
		Storage:  jetstream.FileStorage,
		MaxAge:   eventsRetention,
		Replicas: b.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("rooms: stream %s: %w", streamEvents, err)
	}
	if err := s.openTimeline(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func getJSON[T any](ctx context.Context, kv jetstream.KeyValue, key string) (*T, uint64, error) {
	entry, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	var v T
	if err := json.Unmarshal(entry.Value(), &v); err != nil {
		return nil, 0, fmt.Errorf("rooms: corrupt %s/%s: %w", kv.Bucket(), key, err)
	}
	return &v, entry.Revision(), nil
}

func createJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = kv.Create(ctx, key, data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return ErrConflict
	}
	return err
}

// LoadOrCreateSecret returns the named shared secret, creating it with make on first use; every
// node gets the same value.
func (s *Store) LoadOrCreateSecret(ctx context.Context, name string, make func() []byte) ([]byte, error) {
	key := "secret." + name
	for range maxCASAttempts {
		entry, err := s.config.Get(ctx, key)
		if err == nil {
			return entry.Value(), nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, err
		}
		if _, err := s.config.Create(ctx, key, make()); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, err
		}
	}
	return nil, ErrConflict
}

// ---- organisations, specialists, API keys ----

// CreateOrganization adds a tenant.
func (s *Store) CreateOrganization(ctx context.Context, name string) (*Organization, error) {
	org := &Organization{ID: newID("org_"), Name: name, CreatedAt: s.now().UTC()}
	return org, createJSON(ctx, s.orgs, org.ID, org)
}

// Organization reads one tenant.
func (s *Store) Organization(ctx context.Context, id string) (*Organization, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	o, _, err := getJSON[Organization](ctx, s.orgs, id)
	return o, err
}

func emailKey(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:])
}

// CreateSpecialist adds a specialist; emails are unique across all organisations.
func (s *Store) CreateSpecialist(ctx context.Context, orgID, email, name, passwordHash string, role StaffRole) (*Specialist, error) {
	sp := &Specialist{ID: newID("spc_"), OrgID: orgID, Email: strings.TrimSpace(email), Name: name,
		PasswordHash: passwordHash, CreatedAt: s.now().UTC(), Role: role}
	if err := createJSON(ctx, s.emails, emailKey(email), orgID+"."+sp.ID); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("%w: email %s is taken", ErrConflict, email)
		}
		return nil, err
	}
	return sp, createJSON(ctx, s.specialists, orgID+"."+sp.ID, sp)
}

// SpecialistByEmail finds a specialist for sign-in.
func (s *Store) SpecialistByEmail(ctx context.Context, email string) (*Specialist, error) {
	ref, _, err := getJSON[string](ctx, s.emails, emailKey(email))
	if err != nil {
		return nil, err
	}
	sp, _, err := getJSON[Specialist](ctx, s.specialists, *ref)
	return sp, err
}

// Specialist reads one specialist of an organisation.
func (s *Store) Specialist(ctx context.Context, orgID, id string) (*Specialist, error) {
	if !ValidID(orgID) || !ValidID(id) {
		return nil, ErrNotFound
	}
	sp, _, err := getJSON[Specialist](ctx, s.specialists, orgID+"."+id)
	return sp, err
}

// AddAPIKey stores an API key by its hash, with what it may do.
func (s *Store) AddAPIKey(ctx context.Context, orgID, name, hash string, scopes []string) (*APIKey, error) {
	k := &APIKey{Hash: hash, OrgID: orgID, Name: name, CreatedAt: s.now().UTC(), ID: newID("key_"), Scopes: scopes}
	return k, createJSON(ctx, s.apiKeys, hash, k)
}

// APIKeyByHash looks up an API key.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (*APIKey, error) {
	k, _, err := getJSON[APIKey](ctx, s.apiKeys, hash)
	return k, err
}

// ---- sessions ----

func sessionKey(orgID, id string) string { return orgID + "." + id }

// CreateSession opens a new session for an organisation.
func (s *Store) CreateSession(ctx context.Context, orgID string) (*Session, error) {
	sess := &Session{ID: newID("ses_"), OrgID: orgID, State: SessionWaiting, CreatedAt: s.now().UTC(),
		Participants: []Participant{}}
	if err := createJSON(ctx, s.sessions, sessionKey(orgID, sess.ID), sess); err != nil {
		return nil, err
	}
	s.publish(ctx, Event{Kind: EventCreated, OrgID: orgID, SessionID: sess.ID})
	return sess, nil
}

// Session reads one session of an organisation.
func (s *Store) Session(ctx context.Context, orgID, id string) (*Session, error) {
	if !ValidID(orgID) || !ValidID(id) {
		return nil, ErrNotFound
	}
	sess, _, err := getJSON[Session](ctx, s.sessions, sessionKey(orgID, id))
	return sess, err
}

// ListSessions pages through an organisation's sessions, newest first. after is the id of the
// last session of the previous page.
func (s *Store) ListSessions(ctx context.Context, orgID string, limit int, after string) ([]Session, bool, error) {
	if !ValidID(orgID) {
		return nil, false, nil
	}
	lister, err := s.sessions.ListKeysFiltered(ctx, orgID+".*")
	if err != nil {
		return nil, false, err
	}
	var ids []string
	for key := range lister.Keys() {
		ids = append(ids, strings.TrimPrefix(key, orgID+"."))
	}
	_ = lister.Stop() // already stopped after the last key; Stop then only says so
	slices.Sort(ids)
	slices.Reverse(ids)
	if after != "" {
		i, _ := slices.BinarySearchFunc(ids, after, func(a, b string) int { return strings.Compare(b, a) })
		for i < len(ids) && ids[i] >= after {
			i++
		}
		ids = ids[i:]
	}
	more := len(ids) > limit
	ids = ids[:min(limit, len(ids))]
	out := make([]Session, 0, len(ids))
	for _, id := range ids {
		sess, err := s.Session(ctx, orgID, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		out = append(out, *sess)
	}
	return out, more, nil
}

// update applies change to a session with compare-and-set (see casUpdate).
func (s *Store) update(ctx context.Context, orgID, id string, change func(*Session) error) (*Session, error) {
	if !ValidID(orgID) || !ValidID(id) {
		return nil, ErrNotFound
	}
	return casUpdate(ctx, s.sessions, sessionKey(orgID, id), change)
}

// casUpdate applies change to a JSON record with compare-and-set, retrying when someone else
// changed it first; change sees the latest state every time.
func casUpdate[T any](ctx context.Context, kv jetstream.KeyValue, key string, change func(*T) error) (*T, error) {
	for range maxCASAttempts {
		v, rev, err := getJSON[T](ctx, kv, key)
		if err != nil {
			return nil, err
		}
		if err := change(v); err != nil {
			return nil, err
		}
		data, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		_, err = kv.Update(ctx, key, data, rev)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil, err
		}
	}
	return nil, ErrConflict
}

// JoinRequest says who is joining a session.
type JoinRequest struct {
	Role Role
	Name string
	// Key identifies the person: the same key resumes the same participant.
	Key string
	// Conn names the signaling connection joining and Node the node holding it; the newest
	// connection of a participant is the one that counts (see Participant.Conn).
	Conn string
	Node string
}

// Join adds a participant, or resumes the one with the same key. A customer starts in the
// waiting room unless they had been admitted already; a specialist is in the call at once.
// Resuming takes the participant over from any older connection: a reconnecting participant
// goes back to where they were (the waiting room keeps their place, the call needs no new
// admission), and an older connection still open learns from the event that it was replaced.
func (s *Store) Join(ctx context.Context, orgID, sessionID string, req JoinRequest) (*Session, *Participant, error) {
	var pid string
	var kind EventKind
	sess, err := s.update(ctx, orgID, sessionID, func(sess *Session) error {
		if sess.State == SessionEnded {
			return ErrEnded
		}
		now := s.now().UTC()
		for i := range sess.Participants {
			p := &sess.Participants[i]
			if p.Key != req.Key || req.Key == "" {
				continue
			}
			switch p.State {
			case ParticipantDenied:
				return ErrDenied
			case ParticipantLeft:
				// Coming back keeps the place in the queue: the order is that of first arrival.
				p.LeftAt = nil
				p.State = ParticipantWaiting
				if req.Role.JoinsCallDirectly() || p.AdmittedAt != nil && sess.State == SessionActive {
					p.State = ParticipantInCall
				}
			case ParticipantReconnecting:
				p.State = p.ResumeState
				if p.State != ParticipantInCall && (req.Role.JoinsCallDirectly() || p.AdmittedAt != nil && sess.State == SessionActive) {
					p.State = ParticipantInCall
				}
				if p.State != ParticipantInCall {
					p.State = ParticipantWaiting
				}
			}
			p.ResumeState, p.DisconnectedAt, p.ReconnectBy = "", nil, nil
			p.Conn, p.Node = req.Conn, req.Node
			if req.Name != "" {
				p.Name = req.Name
			}
			pid, kind = p.ID, EventJoined
			if p.State == ParticipantWaiting {
				kind = EventWaiting
			}
			return nil
		}
		if len(sess.Participants) >= s.maxParticipants {
			return fmt.Errorf("%w: the session is full", ErrInvalidState)
		}
		p := Participant{ID: newID("par_"), Role: req.Role, Name: req.Name, Key: req.Key, State: ParticipantWaiting, JoinedAt: now,
			Conn: req.Conn, Node: req.Node}
		kind = EventWaiting
		if req.Role.JoinsCallDirectly() {
			p.State, kind = ParticipantInCall, EventJoined
		}
		sess.Participants = append(sess.Participants, p)
		pid = p.ID
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	s.publish(ctx, Event{Kind: kind, OrgID: orgID, SessionID: sessionID, ParticipantID: pid})
	p, _ := sess.Participant(pid)
	return sess, p, nil
}

// Admit lets a waiting customer into the call. When two specialists admit at once, exactly one
// succeeds; the other gets ErrInvalidState.
func (s *Store) Admit(ctx context.Context, orgID, sessionID, participantID, by string) (*Session, error) {
	sess, err := s.update(ctx, orgID, sessionID, func(sess *Session) error {
		if sess.State == SessionEnded {
			return ErrEnded
		}
		p, ok := sess.Participant(participantID)
		if !ok {
			return ErrNotFound
		}
		if !p.Queued() {
			return fmt.Errorf("%w: participant is %s", ErrInvalidState, p.State)
		}
		now := s.now().UTC()
		p.AdmittedAt = &now
		if p.State == ParticipantReconnecting {
			// Admitted while their connection is down: they come back straight into the call.
			p.ResumeState = ParticipantInCall
		} else {
			p.State = ParticipantInCall
		}
		sess.State = SessionActive
		return nil
	})
	if err == nil {
		s.publish(ctx, Event{Kind: EventAdmitted, OrgID: orgID, SessionID: sessionID, ParticipantID: participantID, Actor: by})
	}
	return sess, err
}

// Deny turns a waiting customer away.
func (s *Store) Deny(ctx context.Context, orgID, sessionID, participantID, reason, by string) (*Session, error) {
	sess, err := s.update(ctx, orgID, sessionID, func(sess *Session) error {
		p, ok := sess.Participant(participantID)
		if !ok {
			return ErrNotFound
		}
		if !p.Queued() {
			return fmt.Errorf("%w: participant is %s", ErrInvalidState, p.State)
		}
		now := s.now().UTC()
		p.State, p.DenyReason, p.LeftAt = ParticipantDenied, reason, &now
		p.ResumeState, p.ReconnectBy = "", nil
		return nil
	})
	if err == nil {
		s.publish(ctx, Event{Kind: EventDenied, OrgID: orgID, SessionID: sessionID, ParticipantID: participantID, Actor: by, Reason: reason})
	}
	return sess, err
}

// Leave marks a participant as gone (hung up or disconnected).
func (s *Store) Leave(ctx context.Context, orgID, sessionID, participantID string) (*Session, error) {
	return s.leave(ctx, orgID, sessionID, participantID, "", false)
}

// LeaveConnection marks a participant as gone when conn still speaks for them: a hang-up from
// a connection that a newer one replaced changes nothing.
func (s *Store) LeaveConnection(ctx context.Context, orgID, sessionID, participantID, conn string) (*Session, error) {
	return s.leave(ctx, orgID, sessionID, participantID, conn, false)
}

// ExpireReconnect marks a participant who was reconnecting on conn as gone: they did not come
// back within the grace. It changes nothing when they came back (or a newer connection took
// over) meanwhile.
func (s *Store) ExpireReconnect(ctx context.Context, orgID, sessionID, participantID, conn string) (*Session, error) {
	return s.leave(ctx, orgID, sessionID, participantID, conn, true)
}

func (s *Store) leave(ctx context.Context, orgID, sessionID, participantID, conn string, onlyReconnecting bool) (*Session, error) {
	changed := false
	sess, err := s.update(ctx, orgID, sessionID, func(sess *Session) error {
		p, ok := sess.Participant(participantID)
		if !ok {
			return ErrNotFound
		}
		changed = p.Present() && (conn == "" || p.Conn == conn) && (!onlyReconnecting || p.State == ParticipantReconnecting)
		if changed {
			now := s.now().UTC()
			p.State, p.LeftAt = ParticipantLeft, &now
			p.ResumeState, p.ReconnectBy = "", nil
		}
		return nil
	})
	if err == nil && changed {
		s.publish(ctx, Event{Kind: EventLeft, OrgID: orgID, SessionID: sessionID, ParticipantID: participantID})
	}
	return sess, err
}

// SetReconnectGrace sets how long a dropped participant stays reconnecting before they are
// marked left (DefaultReconnectGrace unless set).
func (s *Store) SetReconnectGrace(d time.Duration) {
	if d > 0 {
		s.reconnectGrace.Store(int64(d))
	}
}

// ReconnectGrace is how long a dropped participant stays reconnecting.
func (s *Store) ReconnectGrace() time.Duration {
	return time.Duration(s.reconnectGrace.Load())
}

// Disconnect records that conn, the connection of a participant who is waiting or in the
// call, dropped without a goodbye: the participant becomes reconnecting, keeps their place
// until the returned deadline and resumes it when they join again. It reports a zero deadline
// when nothing changed (a newer connection had taken over, or the participant was gone).
func (s *Store) Disconnect(ctx context.Context, orgID, sessionID, participantID, conn string) (time.Time, error) {
	var deadline time.Time
	_, err := s.update(ctx, orgID, sessionID, func(sess *Session) error {
		deadline = time.Time{}
		if sess.State == SessionEnded {
			return nil
		}
		p, ok := sess.Participant(participantID)
		if !ok {
			return ErrNotFound
		}
		if p.Conn != conn || p.State != ParticipantWaiting && p.State != ParticipantInCall {
			return nil
		}
		now := s.now().UTC()
		deadline = now.Add(s.ReconnectGrace())
		p.ResumeState, p.State = p.State, ParticipantReconnecting
		p.DisconnectedAt, p.ReconnectBy = &now, &deadline
		return nil
	})
	if err == nil && !deadline.IsZero() {
		s.publish(ctx, Event{Kind: EventReconnecting, OrgID: orgID, SessionID: sessionID, ParticipantID: participantID})
	}
	return deadline, err
}

// Reconnecting is a participant whose connection dropped, with the deadline for coming back.
type Reconnecting struct {
	OrgID, SessionID, ParticipantID, Conn string
	ReconnectBy                           time.Time
}

// InterruptNode is what a node does when it starts: the connections it held before it stopped
// are gone, so their participants in sessions that have not ended become reconnecting (as if
// each connection had dropped at once) and the session is marked interrupted; it stays
// joinable with the same links, and people who come back resume where they were. It returns
// every participant of that node who is now reconnecting, for the caller to expire at their
// deadline (ExpireReconnect).
func (s *Store) InterruptNode(ctx context.Context, node string) ([]Reconnecting, error) {
	lister, err := s.sessions.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	for key := range lister.Keys() {
		keys = append(keys, key)
	}
	_ = lister.Stop()
	var out []Reconnecting
	for _, key := range keys {
		orgID, sessionID, ok := strings.Cut(key, ".")
		if !ok {
			continue
		}
		var found []Reconnecting
		interrupted := false
		_, err := s.update(ctx, orgID, sessionID, func(sess *Session) error {
			found, interrupted = found[:0], false
			if sess.State == SessionEnded {
				return nil
			}
			now := s.now().UTC()
			deadline := now.Add(s.ReconnectGrace())
			for i := range sess.Participants {
				p := &sess.Participants[i]
				if p.Node != node || !p.Present() {
					continue
				}
				if p.State != ParticipantReconnecting {
					p.ResumeState, p.State = p.State, ParticipantReconnecting
					p.DisconnectedAt, p.ReconnectBy = &now, &deadline
					interrupted = true
				}
				if p.ReconnectBy == nil { // written by an older version
					p.ReconnectBy = &deadline
				}
				found = append(found, Reconnecting{OrgID: orgID, SessionID: sessionID, ParticipantID: p.ID, Conn: p.Conn, ReconnectBy: *p.ReconnectBy})
			}
			if interrupted {
				sess.InterruptedAt = &now
			}
			return nil
		})
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("rooms: interrupt session %s: %w", key, err)
		}
		if interrupted {
			s.publish(ctx, Event{Kind: EventInterrupted, OrgID: orgID, SessionID: sessionID, Reason: "node " + node + " restarted"})
		}
		out = append(out, found...)
	}
	return out, nil
}

// End closes a session for everyone. Ending an ended session is not an error.
func (s *Store) End(ctx context.Context, orgID, sessionID, reason, by string) (*Session, error) {
	already := false
	sess, err := s.update(ctx, orgID, sessionID, func(sess *Session) error {
		if already = sess.State == SessionEnded; already {
			return nil
		}
		now := s.now().UTC()
		sess.State, sess.EndedAt, sess.EndReason = SessionEnded, &now, reason
		for i := range sess.Participants {
			p := &sess.Participants[i]
			if p.Present() {
				p.State, p.LeftAt = ParticipantLeft, &now
				p.ResumeState, p.ReconnectBy = "", nil
			}
		}
		return nil
	})
	if err == nil && !already {
		s.publish(ctx, Event{Kind: EventEnded, OrgID: orgID, SessionID: sessionID, Actor: by, Reason: reason})
	}
	return sess, err
}

// ClaimOnce reports whether this call is the first ever to claim name, across all nodes: it is
// how one-time work such as creating the first organisation happens exactly once.
func (s *Store) ClaimOnce(ctx context.Context, name string) (bool, error) {
	_, err := s.config.Create(ctx, "once."+name, []byte(s.now().UTC().Format(time.RFC3339)))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	return err == nil, err
}
