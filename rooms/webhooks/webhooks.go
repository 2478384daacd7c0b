// Package webhooks delivers signed HTTP callbacks to the endpoints integrators register for
// their organisation, durably.
//
// Publish turns one event into one delivery per matching enabled endpoint. Each delivery is a
// message in the JetStream work-queue stream ASSIST_WEBHOOKS until its endpoint answers 2xx or
// the retries give up, so neither a crash nor a restart loses one; its history (attempts, last
// status, state) is kept in the KV bucket assist_webhook_deliveries. A Deliverer, on any number
// of nodes, pulls deliveries from one shared durable consumer and POSTs them.
//
// Requests carry Assist-Webhook-Id (the event id: the same on every attempt and redelivery, for
// receivers to deduplicate), Assist-Webhook-Timestamp (unix seconds of the attempt) and
// Assist-Webhook-Signature ("v1=" and the hex HMAC-SHA256, keyed with the endpoint secret, of
// timestamp + "." + body); VerifySignature checks them.
//
// Endpoints on loopback, private, link-local and other non-public addresses are refused unless
// Config.AllowPrivateTargets is set: the check runs when the connection is dialled, on the
// address actually dialled, so a DNS name that resolves to an internal address is refused too.
// Redirects are not followed and no HTTP proxy is used, since either would dial for us.
package webhooks

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/assist-video/assist/rooms/bus"
)

// Names in JetStream.
const (
	bucketEndpoints  = "assist_webhook_endpoints"
	bucketDeliveries = "assist_webhook_deliveries"
	streamName       = "ASSIST_WEBHOOKS"
	subjectRoot      = "assist.webhooks"
	consumerName     = "assist_webhook_deliverer"
)

// Limits.
const (
	maxURLLength       = 2048
	maxEventIDLength   = 128
	maxDataBytes       = 64 << 10
	maxEndpointsPerOrg = 32
	maxErrorLength     = 300
	defaultListLimit   = 50
	maxListLimit       = 500
	maxCASAttempts     = 20
	dedupeWindow       = time.Hour
)

// Errors.
var (
	ErrNotFound         = errors.New("webhooks: not found")
	ErrInvalidURL       = errors.New("webhooks: invalid endpoint URL")
	ErrForbiddenTarget  = errors.New("webhooks: target address not allowed")
	ErrUnknownEventType = errors.New("webhooks: unknown event type")
	ErrInvalidEvent     = errors.New("webhooks: invalid event")
	ErrInvalidID        = errors.New("webhooks: invalid id")
	ErrTooManyEndpoints = errors.New("webhooks: too many endpoints for the organisation")
	ErrConflict         = errors.New("webhooks: concurrent update, try again")
)

// Event types an endpoint can subscribe to. AllEvents subscribes to every type, including
// types added later.
const (
	AllEvents                = "*"
	TypeSessionCreated       = "session.created"
	TypeSessionWaiting       = "session.customer_waiting"
	TypeSessionAdmitted      = "session.admitted"
	TypeSessionDenied        = "session.denied"
	TypeSessionEnded         = "session.ended"
	TypeSessionEmergency     = "session.emergency"
	TypeRecordingReady       = "recording.ready"
	TypeSnapshotTaken        = "snapshot.taken"
	TypeFileShared           = "file.shared"
	TypeAppointmentBooked    = "appointment.booked"
	TypeAppointmentCancelled = "appointment.cancelled"
	TypeNotificationFailed   = "notification.failed"
	TypeVideoMessageReceived = "video_message.received"
)

// EventTypes lists the known event types.
func EventTypes() []string {
	return []string{
		TypeSessionCreated, TypeSessionWaiting, TypeSessionAdmitted, TypeSessionDenied,
		TypeSessionEnded, TypeSessionEmergency, TypeRecordingReady, TypeSnapshotTaken,
		TypeFileShared, TypeAppointmentBooked, TypeAppointmentCancelled, TypeNotificationFailed,
		TypeVideoMessageReceived,
	}
}

func knownType(t string) bool { return slices.Contains(EventTypes(), t) }

// Config tunes delivery. The zero value gives the production defaults (except Logger, which
// defaults to slog.Default()).
type Config struct {
	// HTTPTimeout bounds one attempt: connect, TLS, request and response headers. Default 10s.
	HTTPTimeout time.Duration
	// RetryInitial is the wait after the first failed attempt; it doubles per attempt up to
	// RetryMax. Defaults 10s and 1h.
	RetryInitial time.Duration
	RetryMax     time.Duration
	// GiveUpAfter is how long after a delivery was created its last attempt may be; after
	// that a failure marks it failed. Default 24h.
	GiveUpAfter time.Duration
	// Workers is how many attempts one Deliverer makes at once. Default 8.
	Workers int
	// MaxPending bounds deliveries handed out and not yet finished, including those waiting
	// for a retry: a delivery waiting for its next attempt stays pending on the consumer, so
	// this must be well above what failing endpoints can pile up in GiveUpAfter, or they hold
	// up every other endpoint. Default 100000.
	MaxPending int
	// DeliveryRetention is how long delivery records are kept for Deliveries and Redeliver.
	// Default 30 days.
	DeliveryRetention time.Duration
	// SecretGrace is how long after RotateSecret the previous secret still signs (a second
	// v1= signature), so receivers can switch without dropping requests. Default 24h.
	SecretGrace time.Duration
	// AllowPrivateTargets allows endpoints on loopback, private and link-local addresses.
	// Only for tests and closed networks: otherwise integrators could make the server call
	// into its own network.
	AllowPrivateTargets bool
	// UserAgent is sent with every request. Default "Assist-Webhooks/1".
	UserAgent string
	Logger    *slog.Logger
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HTTPTimeout, 10*time.Second)
	def(&c.RetryInitial, 10*time.Second)
	def(&c.RetryMax, time.Hour)
	def(&c.GiveUpAfter, 24*time.Hour)
	def(&c.DeliveryRetention, 30*24*time.Hour)
	def(&c.SecretGrace, 24*time.Hour)
	if c.RetryMax < c.RetryInitial {
		c.RetryMax = c.RetryInitial
	}
	if c.Workers <= 0 {
		c.Workers = 8
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 100_000
	}
	if c.UserAgent == "" {
		c.UserAgent = "Assist-Webhooks/1"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// ackWait is how long the server waits for a Deliverer to finish with a delivery before it
// hands it to another: well above one attempt, so two nodes never POST the same attempt.
func (c Config) ackWait() time.Duration { return 2*c.HTTPTimeout + 30*time.Second }

// Webhooks holds the endpoints and queues deliveries.
type Webhooks struct {
	js         jetstream.JetStream
	endpoints  jetstream.KeyValue
	deliveries jetstream.KeyValue
	cfg        Config
	log        *slog.Logger
	now        func() time.Time
}

// Open creates the buckets, the stream and the deliverers' durable consumer if they are
// missing.
func Open(ctx context.Context, b *bus.Bus, cfg Config) (*Webhooks, error) {
	cfg = cfg.withDefaults()
	w := &Webhooks{js: b.JS, cfg: cfg, log: cfg.Logger.With("component", "webhooks"), now: time.Now}
	var err error
	w.endpoints, err = b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   bucketEndpoints,
		History:  1,
		Storage:  jetstream.FileStorage,
		Replicas: b.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: bucket %s: %w", bucketEndpoints, err)
	}
	w.deliveries, err = b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   bucketDeliveries,
		History:  1,
		TTL:      cfg.DeliveryRetention,
		Storage:  jetstream.FileStorage,
		Replicas: b.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: bucket %s: %w", bucketDeliveries, err)
	}
	_, err = b.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       streamName,
		Subjects:   []string{subjectRoot + ".>"},
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		Replicas:   b.Replicas,
		Duplicates: dedupeWindow,
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: stream %s: %w", streamName, err)
	}
	_, err = b.JS.CreateOrUpdateConsumer(ctx, streamName, jetstream.ConsumerConfig{
		Durable:       consumerName,
		Description:   "webhook deliveries, shared by every node's Deliverer",
		FilterSubject: subjectRoot + ".>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.ackWait(),
		MaxDeliver:    -1, // the Deliverer decides when to give up, by time
		MaxAckPending: cfg.MaxPending,
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: consumer %s: %w", consumerName, err)
	}
	return w, nil
}

// validID reports whether s can be an id of ours (organisation, endpoint, delivery): then it
// is safe as a KV key token and a subject token.
func validID(s string) bool {
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

// newID makes an id that sorts by creation time, in the style of the rooms package.
func newID(prefix string) string {
	var b [14]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()))
	_, _ = rand.Read(b[8:])
	return prefix + lowerBase32(b[:])
}

// deliveryIDFor is the id of the first delivery of an event to an endpoint: derived, so that
// publishing the same event again finds it instead of making another.
func deliveryIDFor(eventID, endpointID string) string {
	sum := sha256.Sum256([]byte(eventID + "\x00" + endpointID))
	return "dlv_" + lowerBase32(sum[:16])
}

func lowerBase32(b []byte) string {
	return strings.ToLower(base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
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
		return nil, 0, fmt.Errorf("webhooks: corrupt %s/%s: %w", kv.Bucket(), key, err)
	}
	return &v, entry.Revision(), nil
}

// loadAll reads the current values of the keys matching filter, in one pass over the bucket's
// stream.
func loadAll[T any](ctx context.Context, kv jetstream.KeyValue, filter string) ([]T, error) {
	watcher, err := kv.WatchFiltered(ctx, []string{filter}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = watcher.Stop() }()
	var out []T
	for {
		select {
		case entry := <-watcher.Updates():
			if entry == nil {
				return out, nil
			}
			var v T
			if err := json.Unmarshal(entry.Value(), &v); err != nil {
				return nil, fmt.Errorf("webhooks: corrupt %s/%s: %w", kv.Bucket(), entry.Key(), err)
			}
			out = append(out, v)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") // drops a rune cut in half
}
