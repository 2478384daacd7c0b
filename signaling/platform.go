package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/rooms/webhooks"
	"github.com/assist-video/assist/signaling/problem"
)

// The integrators' platform: webhooks fed from the session events, and the audit trail of what
// people and API keys did.

// webhookTypes maps session events to the webhook event types integrators subscribe to.
var webhookTypes = map[rooms.EventKind]string{
	rooms.EventCreated:  webhooks.TypeSessionCreated,
	rooms.EventWaiting:  webhooks.TypeSessionWaiting,
	rooms.EventAdmitted: webhooks.TypeSessionAdmitted,
	rooms.EventDenied:   webhooks.TypeSessionDenied,
	rooms.EventEnded:    webhooks.TypeSessionEnded,
}

func (s *Server) openPlatform(ctx context.Context) (err error) {
	if s.webhooks, err = webhooks.Open(ctx, s.bus, webhooks.Config{
		AllowPrivateTargets: s.cfg.WebhookAllowPrivate,
		Logger:              s.log.With("component", "webhooks"),
	}); err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	if s.audit, err = audit.Open(ctx, s.bus, audit.Config{Logger: s.log.With("component", "audit")}); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// runPlatform runs the webhook deliverer and the bridge from session events to webhooks until
// ctx ends. The bridge is a durable JetStream consumer shared by all nodes: each event is
// turned into webhooks once, and none is missed while nodes restart.
func (s *Server) runPlatform(ctx context.Context) {
	s.background(ctx, "webhook deliverer", s.webhooks.NewDeliverer().Run)
	s.background(ctx, "webhook bridge", s.bridgeEventsToWebhooks)
	s.background(ctx, "notifier", s.notifier.Run)
	s.background(ctx, "reminders", s.runReminders)
	s.background(ctx, "recording uploader", s.recorder.Run)
	s.background(ctx, "retention", s.enforceRetention)
	s.background(ctx, "signing keys", s.followKeyring)
}

// background runs a worker owned by the server until ctx ends.
func (s *Server) background(ctx context.Context, name string, run func(context.Context) error) {
	s.workers.Add(1)
	go func() {
		defer s.workers.Done()
		if err := run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("background worker stopped", "worker", name, "err", err)
		}
	}()
}

func (s *Server) bridgeEventsToWebhooks(ctx context.Context) error {
	cons, err := s.bus.JS.CreateOrUpdateConsumer(ctx, "ASSIST_EVENTS", jetstream.ConsumerConfig{
		Durable:       "assist_webhook_bridge",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckWait:       30 * time.Second,
	})
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var ev rooms.Event
		if json.Unmarshal(m.Data(), &ev) != nil {
			_ = m.Term()
			return
		}
		typ, ok := webhookTypes[ev.Kind]
		if !ok {
			_ = m.Ack()
			return
		}
		data, _ := json.Marshal(struct {
			SessionID     string `json:"session_id"`
			ParticipantID string `json:"participant_id,omitempty"`
			Reason        string `json:"reason,omitempty"`
		}{ev.SessionID, ev.ParticipantID, ev.Reason})
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := s.webhooks.Publish(pctx, webhooks.Event{ID: ev.ID, OrgID: ev.OrgID, Type: typ, Time: ev.Time, Data: data}); err != nil {
			s.log.Warn("webhook publish", "event", ev.ID, "err", err)
			_ = m.NakWithDelay(5 * time.Second)
			return
		}
		_ = m.Ack()
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	return nil
}

// publishWebhook sends an event that is not a session state change (file shared, snapshot,
// appointment booked...).
func (s *Server) publishWebhook(ctx context.Context, orgID, typ, id string, data any) {
	raw, _ := json.Marshal(data)
	if err := s.webhooks.Publish(ctx, webhooks.Event{ID: id, OrgID: orgID, Type: typ, Time: time.Now().UTC(), Data: raw}); err != nil {
		s.log.Warn("webhook publish", "type", typ, "err", err)
	}
}

// record writes an audit event; failures are logged, never shown to the user.
func (s *Server) record(ctx context.Context, ev audit.Event) {
	if err := s.audit.Log(context.WithoutCancel(ctx), ev); err != nil {
		s.log.Error("audit", "action", ev.Action, "err", err)
	}
}

// auditFromRequest fills who and from where for an API request.
func (s *Server) auditFromRequest(r *http.Request, action, sessionID, target string) audit.Event {
	ev := audit.Event{Action: action, SessionID: sessionID, Target: target, RemoteAddr: r.RemoteAddr, UserAgent: r.UserAgent()}
	if c, ok := r.Context().Value(callerKey{}).(caller); ok {
		ev.OrgID = c.OrgID
		ev.Actor = audit.Actor{Kind: audit.ActorAPIKey, ID: c.KeyName}
		if c.SpecialistID != "" {
			ev.Actor = audit.Actor{Kind: audit.ActorSpecialist, ID: c.SpecialistID}
		}
	}
	return ev
}

// ---- webhook endpoints ----

type webhookEndpoint struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Enabled   bool      `json:"enabled"`
	Secret    string    `json:"secret,omitempty"` // only when created or rotated
	CreatedAt time.Time `json:"created_at"`
}

func endpointView(e *webhooks.Endpoint, withSecret bool) webhookEndpoint {
	out := webhookEndpoint{ID: e.ID, URL: e.URL, Events: e.Events, Enabled: e.Enabled, CreatedAt: e.CreatedAt}
	if withSecret {
		out.Secret = e.Secret
	}
	return out
}

func (s *Server) handleCreateWebhook(w http.ResponseWriter, r *http.Request) {
	var in struct {
		URL    string   `json:"url"`
		Events []string `json:"events"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	e, err := s.webhooks.Create(r.Context(), callerOf(r).OrgID, in.URL, in.Events)
	if err != nil {
		s.webhookError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, audit.ActionSettingsChange, "", "webhook "+e.ID+" created"))
	writeJSON(w, http.StatusCreated, endpointView(e, true))
}

func (s *Server) handleListWebhooks(w http.ResponseWriter, r *http.Request) {
	list, err := s.webhooks.List(r.Context(), callerOf(r).OrgID)
	if err != nil {
		s.webhookError(w, r, err)
		return
	}
	out := struct {
		Data []webhookEndpoint `json:"data"`
	}{Data: []webhookEndpoint{}}
	for i := range list {
		out.Data = append(out.Data, endpointView(&list[i], false))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetWebhook(w http.ResponseWriter, r *http.Request) {
	e, err := s.webhooks.Get(r.Context(), callerOf(r).OrgID, r.PathValue("id"))
	if err != nil {
		s.webhookError(w, r, err)
		return
	}
	writeJSONTagged(w, r, http.StatusOK, endpointView(e, false))
}

func (s *Server) handleDeleteWebhook(w http.ResponseWriter, r *http.Request) {
	if err := s.webhooks.Delete(r.Context(), callerOf(r).OrgID, r.PathValue("id")); err != nil {
		s.webhookError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, audit.ActionSettingsChange, "", "webhook "+r.PathValue("id")+" deleted"))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleRotateWebhookSecret(w http.ResponseWriter, r *http.Request) {
	e, err := s.webhooks.RotateSecret(r.Context(), callerOf(r).OrgID, r.PathValue("id"))
	if err != nil {
		s.webhookError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, audit.ActionSettingsChange, "", "webhook "+e.ID+" secret rotated"))
	writeJSON(w, http.StatusOK, endpointView(e, true))
}

func (s *Server) handleWebhookDeliveries(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if _, err := s.webhooks.Get(r.Context(), c.OrgID, r.PathValue("id")); err != nil {
		s.webhookError(w, r, err)
		return
	}
	list, err := s.webhooks.Deliveries(r.Context(), c.OrgID, r.PathValue("id"), 100)
	if err != nil {
		s.webhookError(w, r, err)
		return
	}
	out := struct {
		Data []webhooks.Delivery `json:"data"`
	}{Data: list}
	if out.Data == nil {
		out.Data = []webhooks.Delivery{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleRedeliver(w http.ResponseWriter, r *http.Request) {
	if err := s.webhooks.Redeliver(r.Context(), callerOf(r).OrgID, r.PathValue("id")); err != nil {
		s.webhookError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) webhookError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, webhooks.ErrNotFound), errors.Is(err, webhooks.ErrInvalidID):
		problem.Write(w, r, http.StatusNotFound, "not-found", "no such webhook endpoint or delivery")
	case errors.Is(err, webhooks.ErrInvalidURL), errors.Is(err, webhooks.ErrForbiddenTarget), errors.Is(err, webhooks.ErrUnknownEventType):
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-webhook", err.Error())
	case errors.Is(err, webhooks.ErrTooManyEndpoints), errors.Is(err, webhooks.ErrConflict):
		problem.Write(w, r, http.StatusConflict, "conflict", err.Error())
	default:
		s.internalError(w, r, err)
	}
}

// ---- audit events ----

func (s *Server) handleAuditEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := audit.Filter{OrgID: callerOf(r).OrgID, Action: q.Get("action"), ActorID: q.Get("actor_id"),
		SessionID: q.Get("session_id"), After: q.Get("starting_after"), Limit: 100}
	for name, dst := range map[string]*time.Time{"from": &f.From, "to": &f.To} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				problem.Write(w, r, http.StatusBadRequest, "bad-parameter", name+": an RFC 3339 time")
				return
			}
			*dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			problem.Write(w, r, http.StatusBadRequest, "bad-parameter", "limit must be a whole number from 1 to 1000")
			return
		}
		f.Limit = n
	}
	var err error
	export := &startedWriter{ResponseWriter: w}
	switch q.Get("format") {
	case "ndjson":
		w.Header().Set("Content-Type", "application/x-ndjson")
		err = s.audit.ExportNDJSON(r.Context(), export, f)
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="audit-events.csv"`)
		err = s.audit.ExportCSV(r.Context(), export, f)
	case "", "json":
		var page audit.Page
		page, err = s.audit.Query(r.Context(), f)
		if err == nil {
			if page.Events == nil {
				page.Events = []audit.Event{}
			}
			writeJSON(w, http.StatusOK, struct {
				Data       []audit.Event `json:"data"`
				NextCursor string        `json:"next_cursor,omitempty"`
			}{page.Events, page.Next})
		}
	default:
		problem.Write(w, r, http.StatusBadRequest, "bad-parameter", "format: json, ndjson or csv")
		return
	}
	switch {
	case err == nil:
	case export.started:
		// The export is streaming: the status is sent, the client sees a cut-off file.
		s.log.Error("audit export", "err", err)
	case errors.Is(err, audit.ErrInvalidFilter):
		w.Header().Del("Content-Disposition")
		problem.Write(w, r, http.StatusBadRequest, "bad-parameter", err.Error())
	default:
		s.log.Error("audit query", "err", err)
		w.Header().Del("Content-Disposition")
		problem.Write(w, r, http.StatusServiceUnavailable, "audit-unavailable", "the audit trail cannot be read now; try again")
	}
}

// startedWriter tells whether a streamed reply has begun, after which an error can no longer
// become a problem document.
type startedWriter struct {
	http.ResponseWriter
	started bool
}

func (w *startedWriter) Write(p []byte) (int, error) {
	w.started = true
	return w.ResponseWriter.Write(p)
}

func (w *startedWriter) WriteHeader(code int) {
	w.started = true
	w.ResponseWriter.WriteHeader(code)
}
