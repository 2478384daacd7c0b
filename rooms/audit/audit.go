// Package audit keeps Assist's audit trail: who did what, when, from where, in which
// organisation.
//
// Entries are messages in the JetStream stream ASSIST_AUDIT on the subject
// assist.audit.{org}.{action}. The stream denies deleting and purging messages through the
// JetStream API, so the trail is append-only; entries leave only by age (Config.Retention,
// 400 days by default). Deleting the whole stream is still an API call away: in production,
// NATS account permissions should deny $JS.API.STREAM.DELETE.ASSIST_AUDIT to Assist's
// connection (and everyone else's).
//
// Each organisation's entries live under their own subjects and every read filters on them,
// so one organisation's query never reads another's entries.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assist-video/assist/rooms/bus"
)

const (
	streamName  = "ASSIST_AUDIT"
	subjectRoot = "assist.audit"

	defaultRetention = 400 * 24 * time.Hour
	defaultSkew      = 5 * time.Minute

	maxIDLength        = 64
	maxActionLength    = 64
	maxActorIDLength   = 128
	maxActorNameLength = 200
	maxTargetLength    = 256
	maxRemoteAddr      = 100
	maxUserAgent       = 512
	maxDetail          = 2048
)

// Errors.
var (
	ErrInvalidEvent  = errors.New("audit: invalid event")
	ErrInvalidFilter = errors.New("audit: invalid filter")
)

// ActorKind says what kind of party acted.
type ActorKind string

// Actor kinds.
const (
	ActorSpecialist ActorKind = "specialist"
	ActorAPIKey     ActorKind = "api_key"
	ActorCustomer   ActorKind = "customer"
	ActorExpert     ActorKind = "expert" // an outside expert invited into one session
	ActorSystem     ActorKind = "system"
)

// Actions Assist records. Others are accepted if they are well formed: lowercase words of
// a-z, 0-9 and _, joined by dots.
const (
	ActionSessionCreate      = "session.create"
	ActionParticipantAdmit   = "participant.admit"
	ActionParticipantDeny    = "participant.deny"
	ActionSessionEnd         = "session.end"
	ActionSessionDelete      = "session.delete"
	ActionRecordingStart     = "recording.start"
	ActionRecordingStop      = "recording.stop"
	ActionSnapshotTake       = "snapshot.take"
	ActionFileDownload       = "file.download"
	ActionGeolocationRequest = "geolocation.request"
	ActionSettingsChange     = "settings.change"
	ActionAPIKeyCreate       = "api_key.create"
	ActionAPIKeyRevoke       = "api_key.revoke"
	ActionSpecialistCreate   = "specialist.create"
	ActionOrganizationCreate = "organization.create"
	ActionSigningKeyRotate   = "signing_key.rotate"
	ActionSignIn             = "auth.sign_in"
	ActionSignInFailed       = "auth.sign_in_failed"
)

// Actor is who acted.
type Actor struct {
	Kind ActorKind `json:"kind"`
	ID   string    `json:"id,omitempty"`
	Name string    `json:"name,omitempty"`
}

// Event is one entry of the trail. Free-text fields longer than their limit are cut, not
// refused: an entry is never lost over its length.
type Event struct {
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	OrgID      string    `json:"org_id"`
	Actor      Actor     `json:"actor"`
	Action     string    `json:"action"`
	SessionID  string    `json:"session_id,omitempty"`
	Target     string    `json:"target,omitempty"` // what was acted on: participant, file, setting, key...
	RemoteAddr string    `json:"remote_addr,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
	Detail     string    `json:"detail,omitempty"`
}

// Config tunes the trail.
type Config struct {
	// Retention is how long entries are kept. Default 400 days. Shortening it later removes
	// older entries at once.
	Retention time.Duration
	// MaxClockSkew is how far an event's Time may be from the moment it is logged. Queries
	// by time rely on it to know where to start and stop reading. Default 5 minutes.
	MaxClockSkew time.Duration
	Logger       *slog.Logger
}

// Trail is the audit trail of every organisation.
type Trail struct {
	js      jetstream.JetStream
	log     *slog.Logger
	skew    time.Duration
	maxScan int // entries one Query reads at most
	now     func() time.Time
}

// Open creates the stream if it is missing.
func Open(ctx context.Context, b *bus.Bus, cfg Config) (*Trail, error) {
	if cfg.Retention <= 0 {
		cfg.Retention = defaultRetention
	}
	if cfg.MaxClockSkew <= 0 {
		cfg.MaxClockSkew = defaultSkew
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	_, err := b.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        streamName,
		Description: "Assist audit trail: append-only",
		Subjects:    []string{subjectRoot + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      cfg.Retention,
		Replicas:    b.Replicas,
		DenyDelete:  true,
		DenyPurge:   true,
	})
	if err != nil {
		return nil, fmt.Errorf("audit: stream %s: %w", streamName, err)
	}
	return &Trail{
		js:      b.JS,
		log:     cfg.Logger.With("component", "audit"),
		skew:    cfg.MaxClockSkew,
		maxScan: 10_000,
		now:     time.Now,
	}, nil
}

// Log appends an event to the trail and returns once JetStream has stored it. It fills in ID
// and Time when they are empty; logging an event again with the same ID soon after (a retry)
// stores it once.
func (t *Trail) Log(ctx context.Context, ev Event) error {
	now := t.now()
	if ev.ID == "" {
		ev.ID = newID("aud_")
	}
	if ev.Time.IsZero() {
		ev.Time = now
	}
	ev.Time = ev.Time.UTC()
	switch {
	case !validEventID(ev.ID):
		return fmt.Errorf("%w: id must be 1 to %d of A-Z a-z 0-9 _ - . :", ErrInvalidEvent, maxIDLength)
	case !validOrgID(ev.OrgID):
		return fmt.Errorf("%w: organisation id %q", ErrInvalidEvent, ev.OrgID)
	case !validAction(ev.Action):
		return fmt.Errorf("%w: action %q", ErrInvalidEvent, ev.Action)
	case !validActorKind(ev.Actor.Kind):
		return fmt.Errorf("%w: actor kind %q", ErrInvalidEvent, ev.Actor.Kind)
	case ev.Time.Sub(now) > t.skew || now.Sub(ev.Time) > t.skew:
		return fmt.Errorf("%w: time %s is more than %v from now", ErrInvalidEvent, ev.Time.Format(time.RFC3339), t.skew)
	}
	ev.Actor.ID = clip(ev.Actor.ID, maxActorIDLength)
	ev.Actor.Name = clip(ev.Actor.Name, maxActorNameLength)
	ev.SessionID = clip(ev.SessionID, maxActorIDLength)
	ev.Target = clip(ev.Target, maxTargetLength)
	ev.RemoteAddr = clip(ev.RemoteAddr, maxRemoteAddr)
	ev.UserAgent = clip(ev.UserAgent, maxUserAgent)
	ev.Detail = clip(ev.Detail, maxDetail)
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	msg := &nats.Msg{Subject: subjectRoot + "." + ev.OrgID + "." + ev.Action, Data: data}
	if _, err := t.js.PublishMsg(ctx, msg, jetstream.WithMsgID(ev.ID), jetstream.WithExpectStream(streamName)); err != nil {
		return fmt.Errorf("audit: log %s: %w", ev.Action, err)
	}
	return nil
}

// validOrgID: the organisation id is a subject token, so it must not hold dots or wildcards;
// this is what keeps organisations apart.
func validOrgID(s string) bool {
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

func validAction(s string) bool {
	if s == "" || len(s) > maxActionLength {
		return false
	}
	for word := range strings.SplitSeq(s, ".") {
		if word == "" {
			return false
		}
		for _, r := range word {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
				return false
			}
		}
	}
	return true
}

func validActorKind(k ActorKind) bool {
	switch k {
	case ActorSpecialist, ActorAPIKey, ActorCustomer, ActorExpert, ActorSystem:
		return true
	}
	return false
}

func validEventID(s string) bool {
	if s == "" || len(s) > maxIDLength {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.:", r)) {
			return false
		}
	}
	return true
}

// clip cuts s to at most n bytes without splitting a character.
func clip(s string, n int) string {
	if len(s) <= n {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ToValidUTF8(s[:n], "")
}

// newID makes an id that sorts by creation time, in the style of the rooms package.
func newID(prefix string) string {
	var b [14]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()))
	_, _ = rand.Read(b[8:])
	return prefix + strings.ToLower(base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
