// Package rooms holds Assist's state: organisations, specialists, API keys and sessions with
// their waiting rooms. State lives in JetStream KV (so any node can serve any request) and every
// change is an event on NATS, kept in a JetStream stream.
package rooms

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"strings"
	"time"
)

// Errors of the rooms package; the edge maps them to HTTP statuses and socket codes.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict: changed by someone else")
	ErrInvalidState = errors.New("not allowed in the current state")
	ErrDenied       = errors.New("participant was turned away")
	ErrEnded        = errors.New("session has ended")
)

// SessionState is where a session is in its life.
type SessionState string

// Session states.
const (
	SessionWaiting SessionState = "waiting" // created; no customer admitted yet
	SessionActive  SessionState = "active"  // a customer has been admitted
	SessionEnded   SessionState = "ended"
)

// Role is a participant's part in a session.
type Role string

// Roles.
const (
	RoleCustomer   Role = "customer"
	RoleSpecialist Role = "specialist"
	// RoleExpert is someone from outside the organisation invited into one session by a
	// one-off link (see invitations.go): they see and hear everyone, chat and point, and
	// nothing more (no admitting, ending, recording or customer data).
	RoleExpert Role = "expert"
)

// JoinsCallDirectly reports whether the role skips the waiting room: specialists, and experts
// whom a specialist invited.
func (r Role) JoinsCallDirectly() bool { return r == RoleSpecialist || r == RoleExpert }

// ParticipantState is where a participant is.
type ParticipantState string

// Participant states.
const (
	ParticipantWaiting ParticipantState = "waiting" // in the waiting room
	ParticipantInCall  ParticipantState = "in_call"
	ParticipantDenied  ParticipantState = "denied"
	ParticipantLeft    ParticipantState = "left"
	// ParticipantReconnecting: the participant's connection dropped; they keep their place
	// (ResumeState) until ReconnectBy, and then leave.
	ParticipantReconnecting ParticipantState = "reconnecting"
)

// DefaultReconnectGrace is how long a participant whose connection dropped keeps their place
// as "reconnecting" before they are marked left. It covers a phone switching networks or a
// ten-second outage plus the pages' backoff (0.5 s, 1 s, 2 s, 4 s, 8 s, ...).
const DefaultReconnectGrace = 30 * time.Second

// Event kinds of reconnection (the others are in events.go).
const (
	// A participant's connection dropped; they are reconnecting (see ParticipantReconnecting).
	EventReconnecting EventKind = "reconnecting"
	// The node carrying the session stopped without saying goodbye; see Session.InterruptedAt.
	EventInterrupted EventKind = "interrupted"
)

// Organization is a tenant: everything else belongs to exactly one.
type Organization struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Policy    Policy    `json:"policy"`
	// Seats is how many named specialists the organisation is licensed for; 0 is unlimited.
	// Going over is allowed and reported (see signaling's seat report).
	Seats int `json:"seats,omitempty"`
	// StorageRegion names the object store holding the organisation's objects (data
	// residency); empty is the default store. See recording/store's Route.
	StorageRegion string `json:"storage_region,omitempty"`
	// IdentityProvider, when set, is the organisation's own sign-in service whose tokens
	// its specialists may exchange for a console token.
	IdentityProvider *IdentityProvider `json:"identity_provider,omitempty"`
}

// Specialist is a person who signs in to the console.
type Specialist struct {
	ID           string    `json:"id"`
	OrgID        string    `json:"org_id"`
	Email        string    `json:"email"`
	Name         string    `json:"name"`
	PasswordHash string    `json:"password_hash"`
	CreatedAt    time.Time `json:"created_at"`
	// Role is what the specialist may do in the organisation; records from before roles
	// existed (the bootstrapped first specialist) have none and are administrators.
	Role StaffRole `json:"role,omitempty"`
}

// APIKey is an organisation's key for the REST API, stored by the hash of its secret.
type APIKey struct {
	Hash      string    `json:"hash"`
	OrgID     string    `json:"org_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// ID names the key in the API without revealing it; Scopes are what it may do (none
	// recorded: the default scopes, see DefaultScopes).
	ID     string   `json:"id,omitempty"`
	Scopes []string `json:"scopes,omitempty"`
}

// Session is one video assistance session and its waiting room.
type Session struct {
	ID           string        `json:"id"`
	OrgID        string        `json:"org_id"`
	State        SessionState  `json:"state"`
	CreatedAt    time.Time     `json:"created_at"`
	EndedAt      *time.Time    `json:"ended_at,omitempty"`
	EndReason    string        `json:"end_reason,omitempty"`
	Participants []Participant `json:"participants"`
	// An appointment's session opens only within its window.
	AppointmentID string     `json:"appointment_id,omitempty"`
	OpensAt       *time.Time `json:"opens_at,omitempty"`
	ClosesAt      *time.Time `json:"closes_at,omitempty"`
	// Links issued before this instant are revoked.
	LinksValidFrom *time.Time `json:"links_valid_from,omitempty"`
	// InterruptedAt is when the node carrying the session last stopped without saying goodbye
	// (a crash): its participants became reconnecting; the session stays joinable.
	InterruptedAt *time.Time `json:"interrupted_at,omitempty"`
	// MediaNode is the node whose SFU carries the session's media and whose sockets speak for
	// its participants: the first join places it (Store.Place), sockets that reach other nodes
	// are relayed to it, and its death clears it (Store.ReleaseNode).
	MediaNode string `json:"media_node,omitempty"`
	// HandedOverTo is the specialist the session was last handed over to (see invitations.go,
	// HandOver); the session's specialist from then on.
	HandedOverTo string `json:"handed_over_to,omitempty"`
	// AssignedTo is the specialist a waiting customer's session was transferred to (see
	// presence.go, Transfer): it comes first in their queue. AssignedBy made the transfer.
	AssignedTo string     `json:"assigned_to,omitempty"`
	AssignedBy string     `json:"assigned_by,omitempty"`
	AssignedAt *time.Time `json:"assigned_at,omitempty"`
}

// Participant is a person in a session.
type Participant struct {
	ID   string `json:"id"`
	Role Role   `json:"role"`
	Name string `json:"name"`
	// Key identifies the person behind the participant (a link's id, a specialist's id), so
	// that coming back with the same link resumes the same participant.
	Key        string           `json:"key"`
	State      ParticipantState `json:"state"`
	JoinedAt   time.Time        `json:"joined_at"`
	AdmittedAt *time.Time       `json:"admitted_at,omitempty"`
	LeftAt     *time.Time       `json:"left_at,omitempty"`
	DenyReason string           `json:"deny_reason,omitempty"`
	// Conn is the signaling connection that speaks for the participant now and Node the node
	// holding it: a newer connection with the same Key takes over, and only the current one
	// can make the participant reconnecting or left.
	Conn string `json:"conn,omitempty"`
	Node string `json:"node,omitempty"`
	// While reconnecting: the state to resume (waiting or in_call), and until when.
	ResumeState    ParticipantState `json:"resume_state,omitempty"`
	DisconnectedAt *time.Time       `json:"disconnected_at,omitempty"`
	ReconnectBy    *time.Time       `json:"reconnect_by,omitempty"`
	// Diagnostics is the verdict of the customer's last device check (good, may_be_poor,
	// will_not_work), shown in the organisation's queue.
	Diagnostics string `json:"diagnostics,omitempty"`
}

// Queued reports whether the participant holds a place in the waiting room: waiting, or
// reconnecting to it.
func (p *Participant) Queued() bool {
	return p.State == ParticipantWaiting || p.State == ParticipantReconnecting && p.ResumeState == ParticipantWaiting
}

// InCall reports whether the participant is in the call, or reconnecting to it.
func (p *Participant) InCall() bool {
	return p.State == ParticipantInCall || p.State == ParticipantReconnecting && p.ResumeState == ParticipantInCall
}

// Present reports whether the participant is in the session in some way: queued, in the call
// or reconnecting to either.
func (p *Participant) Present() bool {
	return p.State == ParticipantWaiting || p.State == ParticipantInCall || p.State == ParticipantReconnecting
}

// Participant finds a participant by id.
func (s *Session) Participant(id string) (*Participant, bool) {
	for i := range s.Participants {
		if s.Participants[i].ID == id {
			return &s.Participants[i], true
		}
	}
	return nil, false
}

// Waiting lists the customers in the waiting room, longest-waiting first; a customer
// reconnecting to it keeps their place.
func (s *Session) Waiting() []Participant {
	var out []Participant
	for _, p := range s.Participants {
		if p.Queued() {
			out = append(out, p)
		}
	}
	return out
}

// Position is a waiting participant's place in the queue (1 = next), or 0.
func (s *Session) Position(id string) int {
	for i, p := range s.Waiting() {
		if p.ID == id {
			return i + 1
		}
	}
	return 0
}

// newID makes an id that sorts by creation time: prefix, then time and randomness in base32hex.
func newID(prefix string) string {
	var b [14]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()))
	_, _ = rand.Read(b[8:])
	return prefix + strings.ToLower(base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// NewConnectionID names one signaling connection (see Participant.Conn).
func NewConnectionID() string { return newID("con_") }

// ValidID reports whether s can be an id of ours: it then is safe in a KV key or a subject.
func ValidID(s string) bool {
	if len(s) < 3 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}
