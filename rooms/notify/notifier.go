package notify

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// JetStream names.
const (
	// StreamNotify is the work queue of notifications to send, subjects
	// assist.notify.{org}.{channel}, de-duplicated by Nats-Msg-Id = Message.ID.
	StreamNotify = "ASSIST_NOTIFY"
	// ConsumerSender is the durable pull consumer every node's Run shares.
	ConsumerSender = "assist_notify_sender"
	// BucketStatus holds one Status per notification under the key
	// {appointment id}.{first 32 hex digits of SHA-256(Message.ID)}, so Statuses lists one
	// appointment with the key filter "{appointment id}.*". Message IDs are hashed because they may
	// contain dots, which separate key tokens.
	BucketStatus = "assist_notify_status"

	subjectRoot  = "assist.notify"
	dedupeWindow = 10 * time.Minute
	leaseMargin  = 15 * time.Second // on top of SendTimeout, for clock differences between nodes
	kvTimeout    = 10 * time.Second
	maxErrorText = 500
)

// ProviderResolver returns an organisation's senders and its email From address. A nil sender
// means the organisation does not use that channel: its messages fail with ErrNoProvider. An
// error is retried unless marked Permanent.
type ProviderResolver func(ctx context.Context, orgID string) (email EmailSender, sms SMSSender, from string, err error)

// StaticProviders resolves every organisation to the same senders.
func StaticProviders(email EmailSender, sms SMSSender, from string) ProviderResolver {
	return func(context.Context, string) (EmailSender, SMSSender, string, error) { return email, sms, from, nil }
}

// Config configures a Notifier. Only Providers is required.
type Config struct {
	Providers ProviderResolver
	// Settings, when set, holds organisations' own providers: they win over Providers, which
	// then serves the channels an organisation has not set (Settings.Resolver).
	Settings  *Settings
	Templates *Templates // NewTemplates() when nil
	// MaxAttempts is how many sends a notification gets before it fails (10 when zero).
	MaxAttempts int
	// Backoff is the wait before attempt+1 after a retryable failure of attempt (1-based);
	// DefaultBackoff when nil. A provider's Retry-After, when longer, wins.
	Backoff func(attempt int) time.Duration
	Logger  *slog.Logger
	// Replicas for the stream and the status bucket (1 when zero).
	Replicas int
	// Concurrency is how many notifications one Run sends at once (4 when zero).
	Concurrency int
	// SendTimeout bounds one attempt: resolving providers, rendering and sending (30 s when zero).
	SendTimeout time.Duration
	// AckWait is how long JetStream waits for a node that took a message and went silent before
	// it hands the message to another node (30 s when zero). A node that is sending keeps the
	// message with progress reports, so this does not limit SendTimeout.
	AckWait time.Duration
	// StillWanted, when set, is asked before each attempt whether the message is still worth
	// sending; a non-empty reason ends it as "skipped" with that reason (a reminder for an
	// appointment since cancelled or moved). An error is retried.
	StillWanted func(ctx context.Context, m Message) (reason string, err error)
	// StatusTTL is how long a notification's status is kept after its last change (90 days when
	// zero). Within it, enqueuing the same ID again does not send again.
	StatusTTL time.Duration
}

// DefaultBackoff doubles from 2 s and stays at 5 min: 2 s, 4 s, 8 s … 256 s, 300 s, 300 s.
func DefaultBackoff(attempt int) time.Duration {
	const first, ceiling = 2 * time.Second, 5 * time.Minute
	if attempt < 1 {
		attempt = 1
	}
	if attempt > 9 { // 2 s << 8 = 512 s is already past the ceiling
		return ceiling
	}
	return min(first<<(attempt-1), ceiling)
}

// Notifier queues notifications in JetStream and sends them.
type Notifier struct {
	js       jetstream.JetStream
	consumer jetstream.Consumer
	status   jetstream.KeyValue
	cfg      Config
	log      *slog.Logger

	// afterSent, when set (tests), runs after "sent" is stored and before the ack.
	afterSent func(Message)
}

// New creates the stream, the status bucket and the consumer if they are missing.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Notifier, error) {
	if cfg.Providers == nil {
		return nil, errors.New("notify: Config.Providers is required")
	}
	if cfg.Templates == nil {
		cfg.Templates = NewTemplates()
	}
	if cfg.Settings != nil {
		cfg.Providers = cfg.Settings.Resolver(cfg.Providers)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Replicas = max(cfg.Replicas, 1)
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 30 * time.Second
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.StatusTTL <= 0 {
		cfg.StatusTTL = 90 * 24 * time.Hour
	}

	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamNotify,
		Description: "Assist: appointment notifications waiting to be sent",
		Subjects:    []string{subjectRoot + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  dedupeWindow,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("notify: stream %s: %w", StreamNotify, err)
	}
	status, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketStatus,
		Description: "Assist: delivery state of appointment notifications",
		History:     1,
		TTL:         cfg.StatusTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("notify: bucket %s: %w", BucketStatus, err)
	}
	consumer, err := js.CreateOrUpdateConsumer(ctx, StreamNotify, jetstream.ConsumerConfig{
		Durable:       ConsumerSender,
		Description:   "Assist: sends appointment notifications",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    -1, // attempts are counted in the status, where failures are recorded
		MaxAckPending: 1000,
	})
	if err != nil {
		return nil, fmt.Errorf("notify: consumer %s: %w", ConsumerSender, err)
	}
	return &Notifier{
		js: js, consumer: consumer, status: status, cfg: cfg,
		log: cfg.Logger.With("component", "notify"),
	}, nil
}

// Settings are the organisations' own providers (Config.Settings), or nil.
func (n *Notifier) Settings() *Settings { return n.cfg.Settings }

// Templates are the templates the notifier renders with.
func (n *Notifier) Templates() *Templates { return n.cfg.Templates }

// Enqueue validates m, records it as queued and publishes it; it returns once JetStream has
// stored it. Enqueuing an ID again is harmless: within the stream's de-duplication window the
// publish is dropped, and a notification already sent or failed is left as it is. Errors about
// m wrap ErrInvalidMessage. After any other error the notification may show as queued without
// being in the queue: enqueue it again.
func (n *Notifier) Enqueue(ctx context.Context, m Message) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if _, err := n.cfg.Templates.Render(m.OrgID, m); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	st := Status{
		ID: m.ID, OrgID: m.OrgID, AppointmentID: m.AppointmentID, Channel: m.Channel, Kind: m.Kind,
		To: m.To, State: StateQueued, UpdatedAt: time.Now().UTC(),
	}
	created, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = n.status.Create(ctx, statusKey(m), created)
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		cur, _, err := n.loadStatus(ctx, statusKey(m))
		if err != nil {
			return fmt.Errorf("notify: status of %s: %w", m.ID, err)
		}
		if cur != nil && (cur.State == StateSent || cur.State == StateFailed || cur.State == StateSkipped) {
			return nil // done already; a retry of an enqueue that succeeded
		}
	case err != nil:
		return fmt.Errorf("notify: status of %s: %w", m.ID, err)
	}
	subject := subjectRoot + "." + m.OrgID + "." + string(m.Channel)
	_, err = n.js.Publish(ctx, subject, data, jetstream.WithMsgID(m.ID), jetstream.WithExpectStream(StreamNotify))
	if err != nil {
		return fmt.Errorf("notify: enqueue %s: %w", m.ID, err)
	}
	return nil
}

// Statuses lists the notifications of one appointment, by ID.
func (n *Notifier) Statuses(ctx context.Context, appointmentID string) ([]Status, error) {
	if !validToken(appointmentID) {
		return nil, fmt.Errorf("%w: appointment id %q", ErrInvalidMessage, appointmentID)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := n.status.Watch(ctx, appointmentID+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	var out []Status
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("notify: status listing stopped early")
			}
			if e == nil { // everything stored at the start has been seen
				slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.ID, b.ID) })
				return out, nil
			}
			var st Status
			if err := json.Unmarshal(e.Value(), &st); err != nil {
				return nil, fmt.Errorf("notify: corrupt status %s: %w", e.Key(), err)
			}
			out = append(out, st)
		}
	}
}

// Run sends notifications until ctx ends, then finishes the ones it is sending, hands back the
// ones it had taken but not started, and returns nil. It returns an error if the consumer fails
// (the NATS connection closed for good, the consumer deleted). Run may run on every node at once.
func (n *Notifier) Run(ctx context.Context) error {
	it, err := n.consumer.Messages(
		jetstream.PullMaxMessages(n.cfg.Concurrency),
		jetstream.WithMessagesErrOnMissingHeartbeat(false), // the client re-pulls after a reconnect
	)
	if err != nil {
		return fmt.Errorf("notify: consume: %w", err)
	}
	// Sends finish even after ctx ends: a notification half-handled is worse than a slow stop.
	work := context.WithoutCancel(ctx)
	slots := make(chan struct{}, n.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	n.log.Info("notifier running", "concurrency", n.cfg.Concurrency)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			n.handBack(it)
			return nil
		}
		jm, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				n.handBack(it)
				return nil
			}
			it.Stop()
			return fmt.Errorf("notify: consume: %w", err)
		}
		wg.Go(func() {
			defer func() { <-slots }()
			n.handle(work, jm)
		})
	}
}

// handBack returns messages that were fetched but not started, so another node (or the next Run)
// gets them now instead of after AckWait.
func (n *Notifier) handBack(it jetstream.MessagesContext) {
	it.Drain()
	for {
		jm, err := it.Next(jetstream.NextMaxWait(time.Second))
		if err != nil {
			return
		}
		_ = jm.Nak()
	}
}

// handle takes one notification from the queue to an outcome: ack (sent, or sent before), nak
// with a delay (retry later), or term (failed for good).
func (n *Notifier) handle(ctx context.Context, jm jetstream.Msg) {
	var m Message
	if err := json.Unmarshal(jm.Data(), &m); err != nil {
		n.log.Error("dropping a notification that is not JSON", "subject", jm.Subject(), "err", err)
		_ = jm.TermWithReason("not JSON")
		return
	}
	log := n.log.With("notification", m.ID, "org", m.OrgID, "appointment", m.AppointmentID,
		"channel", m.Channel, "kind", m.Kind)
	if err := m.Validate(); err != nil {
		log.Error("dropping an invalid notification", "err", err)
		_ = jm.TermWithReason("invalid")
		return
	}
	key := statusKey(m)
	st, rev, err := n.loadStatus(ctx, key)
	if err != nil {
		log.Warn("cannot read the status; retrying", "err", err)
		_ = jm.NakWithDelay(n.cfg.Backoff(1))
		return
	}
	if st == nil { // enqueued by something that did not write a status
		st = &Status{ID: m.ID, OrgID: m.OrgID, AppointmentID: m.AppointmentID, Channel: m.Channel,
			Kind: m.Kind, To: m.To, State: StateQueued}
	}
	now := time.Now().UTC()
	switch {
	case st.State == StateSent:
		log.Info("already sent; not sending again")
		n.ack(ctx, jm, log)
		return
	case st.State == StateFailed || st.State == StateSkipped:
		_ = jm.TermWithReason(string(st.State) + " before")
		return
	case st.State == StateSending && now.Before(st.LeaseUntil):
		// Another delivery of this ID is being sent; look again when its lease ends.
		_ = jm.NakWithDelay(st.LeaseUntil.Sub(now) + time.Second)
		return
	case !m.Expires.IsZero() && !now.Before(m.Expires):
		n.fail(ctx, jm, key, *st, rev, "expired before it could be sent", log)
		return
	case st.Attempts >= n.cfg.MaxAttempts:
		n.fail(ctx, jm, key, *st, rev, cmp.Or(st.LastError, "out of attempts"), log)
		return
	}
	if n.cfg.StillWanted != nil {
		reason, err := n.cfg.StillWanted(ctx, m)
		if err != nil {
			log.Warn("cannot tell whether the notification is still wanted; retrying", "err", err)
			_ = jm.NakWithDelay(n.cfg.Backoff(1))
			return
		}
		if reason != "" {
			n.end(ctx, jm, key, *st, rev, StateSkipped, reason, log)
			return
		}
	}

	// Claim it: whoever writes this revision first sends; the lease keeps the others away.
	st.State, st.Attempts, st.UpdatedAt = StateSending, st.Attempts+1, now
	st.LeaseUntil = now.Add(n.cfg.SendTimeout + leaseMargin)
	if rev, err = n.writeStatus(ctx, key, *st, rev); err != nil {
		log.Info("could not claim the notification; looking again shortly", "err", err)
		_ = jm.NakWithDelay(time.Second)
		return
	}

	sendErr := n.sendKeepingMessage(ctx, jm, m)

	st.LeaseUntil, st.UpdatedAt = time.Time{}, time.Now().UTC()
	if sendErr == nil {
		st.State, st.SentAt, st.LastError = StateSent, st.UpdatedAt, ""
		if err := n.recordSent(ctx, key, *st); err != nil {
			// The one case that sends twice: see the package comment.
			log.Error("sent, but could not record it; it will be sent again after its lease", "err", err)
			return
		}
		log.Info("sent", "attempt", st.Attempts)
		if n.afterSent != nil {
			n.afterSent(m)
		}
		n.ack(ctx, jm, log)
		return
	}

	st.LastError = truncate(sendErr.Error(), maxErrorText)
	if IsPermanent(sendErr) || st.Attempts >= n.cfg.MaxAttempts {
		n.fail(ctx, jm, key, *st, rev, st.LastError, log)
		return
	}
	st.State = StateQueued
	delay := n.cfg.Backoff(st.Attempts)
	if after, ok := retryAfter(sendErr); ok && after > delay {
		delay = after
	}
	if _, err := n.writeStatus(ctx, key, *st, rev); err != nil {
		log.Warn("cannot record the failed attempt", "err", err)
		delay = max(delay, n.cfg.SendTimeout+leaseMargin) // the lease we could not clear
	}
	log.Warn("send failed; will retry", "attempt", st.Attempts, "retry_in", delay, "err", sendErr)
	_ = jm.NakWithDelay(delay)
}

// sendKeepingMessage sends m while telling JetStream, every third of AckWait, that we still
// have it.
func (n *Notifier) sendKeepingMessage(ctx context.Context, jm jetstream.Msg, m Message) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.SendTimeout)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(n.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = jm.InProgress()
			}
		}
	})
	defer wg.Wait()
	defer cancel() // runs first: stops the ticker goroutine
	return n.send(ctx, m)
}

func (n *Notifier) send(ctx context.Context, m Message) error {
	email, sms, from, err := n.cfg.Providers(ctx, m.OrgID)
	if err != nil {
		return fmt.Errorf("notify: providers of %s: %w", m.OrgID, err)
	}
	r, err := n.cfg.Templates.Render(m.OrgID, m)
	if err != nil {
		return Permanent(err)
	}
	switch m.Channel {
	case ChannelEmail:
		if email == nil {
			return Permanent(fmt.Errorf("%w (email)", ErrNoProvider))
		}
		return email.Send(ctx, from, m.To, r)
	case ChannelSMS:
		if sms == nil {
			return Permanent(fmt.Errorf("%w (sms)", ErrNoProvider))
		}
		return sms.Send(ctx, m.To, r.Text, m.ID)
	}
	return Permanent(fmt.Errorf("notify: channel %q", m.Channel))
}

// fail records st as failed with reason and terminates the message. If the status cannot be
// written the message comes back later instead, so "failed" is never lost.
func (n *Notifier) fail(ctx context.Context, jm jetstream.Msg, key string, st Status, rev uint64, reason string, log *slog.Logger) {
	n.end(ctx, jm, key, st, rev, StateFailed, reason, log)
}

// end records st in a final state (failed or skipped) with reason and terminates the message.
func (n *Notifier) end(ctx context.Context, jm jetstream.Msg, key string, st Status, rev uint64, state State, reason string, log *slog.Logger) {
	st.State, st.LastError, st.LeaseUntil, st.UpdatedAt = state, reason, time.Time{}, time.Now().UTC()
	if _, err := n.writeStatus(ctx, key, st, rev); err != nil {
		log.Warn("cannot record the outcome; looking again shortly", "state", state, "err", err)
		_ = jm.NakWithDelay(n.cfg.Backoff(1))
		return
	}
	log.Warn("notification not sent", "state", state, "attempts", st.Attempts, "reason", reason)
	_ = jm.TermWithReason(truncate(reason, 200))
}

// ack acknowledges and waits for JetStream to confirm. A lost ack only means a redelivery,
// which finds the status "sent" and does nothing.
func (n *Notifier) ack(ctx context.Context, jm jetstream.Msg, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	if err := jm.DoubleAck(ctx); err != nil {
		log.Warn("ack not confirmed; a redelivery will find it sent", "err", err)
	}
}

// recordSent stores the "sent" status, trying for a while: until it is stored, a crash would
// send the notification again.
func (n *Notifier) recordSent(ctx context.Context, key string, st Status) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	wait := 200 * time.Millisecond
	for try := 1; ; try++ {
		kctx, cancel := context.WithTimeout(ctx, kvTimeout)
		_, err = n.status.Put(kctx, key, data)
		cancel()
		if err == nil || try == 5 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

func (n *Notifier) loadStatus(ctx context.Context, key string) (*Status, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	e, err := n.status.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var st Status
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, 0, fmt.Errorf("corrupt status %s: %w", key, err)
	}
	return &st, e.Revision(), nil
}

// writeStatus stores st if the key is still at rev (0: if the key does not exist).
func (n *Notifier) writeStatus(ctx context.Context, key string, st Status, rev uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	data, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		return n.status.Create(ctx, key, data)
	}
	return n.status.Update(ctx, key, data, rev)
}

func statusKey(m Message) string {
	sum := sha256.Sum256([]byte(m.ID))
	return m.AppointmentID + "." + hex.EncodeToString(sum[:16])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
