package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Deliverer makes the HTTP attempts. Run as many as you like, on any nodes: they share one
// durable consumer, and each delivery goes to one of them at a time.
type Deliverer struct {
	w         *Webhooks
	client    *http.Client
	transport *http.Transport
	log       *slog.Logger
}

// NewDeliverer makes a Deliverer with the Webhooks' Config.
func (w *Webhooks) NewDeliverer() *Deliverer {
	dialer := &net.Dialer{Timeout: w.cfg.HTTPTimeout, KeepAlive: 30 * time.Second}
	if !w.cfg.AllowPrivateTargets {
		dialer.Control = guardControl
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would dial the target for us, past the guard
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   w.cfg.HTTPTimeout,
		ResponseHeaderTimeout: w.cfg.HTTPTimeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	return &Deliverer{
		w:         w,
		transport: transport,
		client: &http.Client{
			Transport: transport,
			Timeout:   w.cfg.HTTPTimeout,
			// A redirect is an answer, not a 2xx: following it would also let an endpoint
			// send us to an address the guard is there to refuse.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		log: w.log.With("component", "webhook-deliverer"),
	}
}

// Run delivers until ctx ends, then lets the attempts under way finish (each is bounded by
// Config.HTTPTimeout), hands back deliveries it had fetched but not started, and returns nil.
// It returns an error if it cannot start, or if the NATS connection closes first: stop the
// Deliverer before closing the bus.
func (d *Deliverer) Run(ctx context.Context) error {
	cons, err := d.w.js.Consumer(ctx, streamName, consumerName)
	if err != nil {
		return fmt.Errorf("webhooks: consumer: %w", err)
	}
	defer d.transport.CloseIdleConnections()
	var wg sync.WaitGroup
	slots := make(chan struct{}, d.w.cfg.Workers)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			_ = msg.Nak() // shutting down: let another node have it now, not after AckWait
			return
		}
		wg.Go(func() {
			defer func() { <-slots }()
			d.handle(msg)
		})
	},
		jetstream.PullMaxMessages(d.w.cfg.Workers),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			d.log.Debug("consume", "err", err)
		}),
	)
	if err != nil {
		return fmt.Errorf("webhooks: consume: %w", err)
	}
	select {
	case <-ctx.Done():
	case <-cc.Closed(): // the connection closed under us
		wg.Wait()
		return errors.New("webhooks: delivery stopped: the NATS connection closed")
	}
	cc.Drain() // buffered messages go through the handler, which hands them back
	<-cc.Closed()
	wg.Wait()
	return nil
}

// handle makes one attempt at one delivery, records it, and acks (done) or naks with the
// backoff delay (again later). It does not use Run's context: an attempt under way at
// shutdown finishes, and its outcome is recorded.
func (d *Deliverer) handle(msg jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), d.w.cfg.HTTPTimeout+20*time.Second)
	defer cancel()
	h := msg.Headers()
	org, epID, id := h.Get(hdrOrg), h.Get(hdrEndpoint), h.Get(hdrDelivery)
	log := d.log.With("org", org, "endpoint", epID, "delivery", id)
	if !validID(org) || !validID(epID) || !validID(id) {
		log.Error("malformed delivery message, dropping it")
		_ = msg.Term()
		return
	}
	rec, rev, err := getJSON[deliveryRecord](ctx, d.w.deliveries, deliveryKey(org, epID, id))
	if errors.Is(err, ErrNotFound) {
		// Publish has not recorded it yet (it queues first), stopped before it could, or the
		// record outlived its retention. Whoever records first wins; the other adopts that.
		rec, rev, err = d.recordFromMessage(ctx, msg)
	}
	if err != nil {
		log.Warn("read delivery", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if rec.State != StatePending {
		_ = msg.Ack() // finished already; an ack of a previous run was lost
		return
	}
	now := d.w.now()
	if wait := rec.NextAttemptAt.Sub(now); wait > 100*time.Millisecond {
		// Handed out early, as after a server restart, which forgets nak delays.
		_ = msg.NakWithDelay(wait)
		return
	}

	ep, _, err := d.w.loadEndpoint(ctx, org, epID)
	switch {
	case errors.Is(err, ErrNotFound):
		d.finish(ctx, log, msg, rec, rev, StateFailed, "endpoint deleted")
		return
	case err != nil:
		log.Warn("read endpoint", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	case !ep.Enabled:
		d.finish(ctx, log, msg, rec, rev, StateFailed, "endpoint disabled")
		return
	}

	_ = msg.InProgress() // restart AckWait for the attempt
	status, attemptErr := d.post(ctx, ep, rec)
	now = d.w.now()
	rec.Attempts++
	rec.LastStatus = status
	if attemptErr == nil {
		rec.LastError = ""
		d.finish(ctx, log, msg, rec, rev, StateDelivered, "")
		return
	}
	rec.LastError = truncate(attemptErr.Error(), maxErrorLength)
	deadline := rec.CreatedAt.Add(d.w.cfg.GiveUpAfter)
	if errors.Is(attemptErr, ErrForbiddenTarget) || !now.Before(deadline) {
		d.finish(ctx, log, msg, rec, rev, StateFailed, rec.LastError)
		return
	}
	delay := min(d.backoff(rec.Attempts), deadline.Sub(now))
	rec.NextAttemptAt = now.Add(delay).UTC()
	if _, err := d.w.saveDelivery(ctx, rec, rev); err != nil {
		log.Warn("record attempt", "err", err)
	}
	log.Info("webhook attempt failed", "attempt", rec.Attempts, "status", status, "err", attemptErr, "retry_in", delay)
	if err := msg.NakWithDelay(delay); err != nil {
		log.Warn("nak", "err", err) // AckWait will hand it out again
	}
}

// finish records the final state, then acks: if the ack is lost, the redelivered message finds
// the state final and is acked without another attempt.
func (d *Deliverer) finish(ctx context.Context, log *slog.Logger, msg jetstream.Msg, rec *deliveryRecord, rev uint64, state State, reason string) {
	rec.State = state
	rec.NextAttemptAt = time.Time{}
	if state == StateDelivered {
		t := d.w.now().UTC()
		rec.DeliveredAt = &t
	} else {
		rec.LastError = reason
		log.Warn("webhook delivery failed for good", "attempts", rec.Attempts, "reason", reason)
	}
	if _, err := d.w.saveDelivery(ctx, rec, rev); err != nil {
		log.Warn("record delivery", "state", state, "err", err)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		log.Warn("ack", "err", err)
	}
}

// backoff is the wait after the n-th failed attempt: RetryInitial doubling to RetryMax, plus
// up to a tenth more so that endpoints coming back are not hit by every retry at once.
func (d *Deliverer) backoff(n int) time.Duration {
	delay := d.w.cfg.RetryInitial
	for i := 1; i < n && delay < d.w.cfg.RetryMax; i++ {
		delay *= 2
	}
	delay = min(delay, d.w.cfg.RetryMax)
	return delay + rand.N(delay/10+1)
}

// post makes one attempt and returns the HTTP status (0 if none came back) and why the attempt
// failed, or nil for a 2xx.
func (d *Deliverer) post(ctx context.Context, ep *endpointRecord, rec *deliveryRecord) (int, error) {
	now := d.w.now()
	ts := now.Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(rec.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.w.cfg.UserAgent)
	req.Header.Set(HeaderID, rec.EventID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, signatureHeader(ep.signingSecrets(now), ts, rec.Body))
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	// Read a little so the connection can be reused; the content does not matter.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("endpoint answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}
